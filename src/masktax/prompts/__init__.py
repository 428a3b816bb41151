"""Prompt rendering (base and chat text, arrangements) and encoding (ids, answer position, suffixes)."""

from masktax.prompts.encode import (
    SUFFIXES,
    EncodedItem,
    check_length,
    encode_item,
    filler_token_id,
    letter_token_ids,
)
from masktax.prompts.render import (
    ARRANGEMENTS,
    FORMATS,
    QUERY_POSITIONS,
    PromptText,
    arrange,
    prompt_text,
    split_context,
)

__all__ = [
    "ARRANGEMENTS", "FORMATS", "QUERY_POSITIONS", "SUFFIXES", "EncodedItem", "PromptText", "arrange",
    "check_length", "encode_item", "filler_token_id", "letter_token_ids", "prompt_text", "split_context",
]
