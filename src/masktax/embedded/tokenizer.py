"""A word-level tokenizer for the suite's closed vocabulary (word lists, numbers, format tokens).

Every word, number and punctuation mark of the probe format is one token, so a tiny model spends
its capacity on the rule, not on spelling. Spaces are dropped; "\\n" and "\\n\\n" are tokens.
Decoding joins tokens with single spaces (display only: probes never decode text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

UNK = "[UNK]"
EOS = "<|endoftext|>"
MASK = "<|mask|>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
SPECIAL_TOKENS = (UNK, EOS, MASK, *CHAT_TOKENS)

# Pieces a text splits into: blank line, newline, a word, a number, one punctuation mark.
PIECE = r"\n\n|\n|[A-Za-z]+|[0-9]+|[^\sA-Za-z0-9]"
FORMAT_TOKENS = ("\n\n", "\n", "Options", "Answer", ":", "(", ")", ",", "[", "]", ".", "A", "B", "C")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}\n{{ message['content'] }}{{ '<|end|>' }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}\n{% endif %}"
)


def pieces(text: str) -> list[str]:
    """Split text the way the tokenizer's pre-tokenizer does (used to build the vocabulary)."""
    return re.findall(PIECE, text)


def build_tokenizer(words: Iterable[str], *, max_number: int = 1000) -> PreTrainedTokenizerFast:
    """A word-level `PreTrainedTokenizerFast` over special tokens, format tokens, 0..max_number and `words`.

    Token ids are deterministic: specials, format tokens, numbers, then word pieces in sorted order.
    """
    vocab: dict[str, int] = {}
    for tok in (*SPECIAL_TOKENS, *FORMAT_TOKENS, *(str(n) for n in range(max_number + 1))):
        vocab.setdefault(tok, len(vocab))
    for piece in sorted({p for w in words for p in pieces(w)}):
        vocab.setdefault(piece, len(vocab))

    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE), behavior="isolated", invert=False)
    # Split keeps the unmatched spaces as pieces: drop them with a second pass.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r"[ \t]+"), behavior="removed"), tok.pre_tokenizer]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        eos_token=EOS,
        pad_token=EOS,
        mask_token=MASK,
        additional_special_tokens=list(CHAT_TOKENS),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
