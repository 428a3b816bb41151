"""The embedded default: a word-level tokenizer and the small models that ship with masktax."""
