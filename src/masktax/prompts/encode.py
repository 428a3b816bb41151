"""Token ids of a prompt, with the answer position and the suffix the probes sweep.

The text up to and including `Answer:[` is tokenized; then ids are APPENDED, so no mask or filler
ever depends on how a tokenizer would merge text:

    one_mask  ... Answer:[ <mask> ].  (+ the rest of the context when the query is not at the right)
    masks     ... Answer:[ <mask> <mask>*n_extra      (+ ]. and the rest when not at the right)
    filler    ... Answer:[ <mask> " ."*n_extra        (the filler control of [P1])
    canvas    ... Answer:[ canvas_ids[0] canvas_ids[1:]  (uniform-noise models: caller's tokens)

The answer position is the first appended id; `letter_ids` are the ids of A, B, C right after
`Answer:[` (checked to be one token each). Base prompts get the tokenizer's default leading special
tokens (BOS) when it adds any; chat prompts carry the template's own.

Tokenization is cached: a prompt is `head + query`, where `head` (the context before the query)
is shared by every test point of a dataset and arrangement. The head is tokenized once, and
`ids(head) + ids(query)` is used when it equals `ids(head + query)` (checked on first use per head
and tokenizer); otherwise the whole prefix is tokenized every time.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from masktax.errors import MasktaxError
from masktax.prompts.render import PromptText, _tokenizer_name, prompt_text
from masktax.tasks.suite import ANSWER_PREFIX, LETTERS, Example

SUFFIXES = ("one_mask", "masks", "filler", "canvas")
_LETTER_PROBE = "Options: (A) x, (B) y, (C) z\n" + ANSWER_PREFIX  # text the letters follow


@dataclass(frozen=True)
class EncodedItem:
    """Prompt ids; `ids[answer_pos]` is the answer position, `answer_id` the correct letter's id."""

    ids: list[int]
    answer_pos: int
    answer_id: int
    letter_ids: tuple[int, int, int]


class _Cache:
    """Per-tokenizer memo: texts -> ids, heads -> (ids, split is exact), letter and filler ids."""

    def __init__(self) -> None:
        self.texts: dict[str, list[int]] = {}
        self.heads: dict[str, tuple[list[int], bool]] = {}
        self.special_prefix: list[int] | None = None
        self.letters: tuple[int, int, int] | None = None
        self.filler: int | None = None


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache(tokenizer: Any) -> _Cache:
    cache = _CACHES.get(tokenizer)
    if cache is None:
        cache = _CACHES[tokenizer] = _Cache()
    return cache


def _ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` without added special tokens (special-token strings in the text still map)."""
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def _special_prefix(tokenizer: Any) -> list[int]:
    """The special ids the tokenizer puts in front of a text by default (e.g. [BOS]); [] if none."""
    cache = _cache(tokenizer)
    if cache.special_prefix is None:
        plain = _ids(tokenizer, "Options")
        full = list(tokenizer.encode("Options", add_special_tokens=True))
        starts = [i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain]
        cache.special_prefix = full[: starts[0]] if starts else []
    return cache.special_prefix


def _continuation(tokenizer: Any, anchor: str, text: str) -> list[int] | None:
    """Ids `text` adds after `anchor` in running text, or None if the tokenizer merges across."""
    base, ids = _ids(tokenizer, anchor), _ids(tokenizer, anchor + text)
    return ids[len(base) :] if ids[: len(base)] == base else None


def letter_token_ids(tokenizer: Any) -> tuple[int, int, int]:
    """Ids of A, B, C right after `Answer:[`; MasktaxError unless each is exactly one extra token."""
    cache = _cache(tokenizer)
    if cache.letters is None:
        ids = []
        for letter in LETTERS:
            extra = _continuation(tokenizer, _LETTER_PROBE, letter)
            if extra is None or len(extra) != 1:
                raise MasktaxError(
                    f"tokenizer {_tokenizer_name(tokenizer)!r} does not encode the answer letter {letter!r} "
                    f"as one token after {ANSWER_PREFIX!r}, so the suite cannot be scored with it"
                )
            ids.append(extra[0])
        if len(set(ids)) != 3:
            raise MasktaxError(f"tokenizer {_tokenizer_name(tokenizer)!r} maps A, B, C to the same token")
        cache.letters = (ids[0], ids[1], ids[2])
    return cache.letters


def filler_token_id(tokenizer: Any) -> int:
    """The id of " ." (a full stop after a space, as in running text), the filler of [P1]."""
    cache = _cache(tokenizer)
    if cache.filler is None:
        extra = _continuation(tokenizer, "Answer", " .")
        if extra is None or len(extra) != 1:
            raise MasktaxError(
                f"tokenizer {_tokenizer_name(tokenizer)!r} does not encode ' .' as one token; pass filler_id"
            )
        cache.filler = extra[0]
    return cache.filler


def _prefix_ids(tokenizer: Any, text: PromptText, fmt: str) -> list[int]:
    heads = _cache(tokenizer).heads
    entry = heads.get(text.head)
    if entry is None:
        head_ids = _ids(tokenizer, text.head)
        exact = head_ids + _ids(tokenizer, text.query) == _ids(tokenizer, text.prefix)
        if len(heads) > 512:
            heads.clear()
        heads[text.head] = entry = (head_ids, exact)
    head_ids, exact = entry
    ids = head_ids + _ids(tokenizer, text.query) if exact else _ids(tokenizer, text.prefix)
    return (_special_prefix(tokenizer) if fmt == "base" else []) + ids


def _rest_ids(tokenizer: Any, rest: str) -> list[int]:
    """Ids of the text after the answer letter, tokenized as it continues `Answer:[A`."""
    key = "\x00rest\x00" + rest
    texts = _cache(tokenizer).texts
    if key not in texts:
        ids = _continuation(tokenizer, ANSWER_PREFIX + "A", rest)
        texts[key] = ids if ids is not None else _ids(tokenizer, rest)
    return texts[key]


def check_length(n_tokens: int, max_length: int | None) -> None:
    """MasktaxError if a prompt of `n_tokens` does not fit the model's context `max_length`."""
    if max_length is not None and n_tokens > max_length:
        raise MasktaxError(f"prompt of {n_tokens} tokens exceeds the model's context of {max_length}")


def check_suffix_args(suffix: str, n_extra: int, mask_id: int | None) -> None:
    """MasktaxError if `n_extra` is negative (or not 0 for "one_mask"), or a suffix that appends masks has no
    `mask_id`: the argument checks `encode_item` and the appendix's `encode_suite_item` share."""
    if n_extra < 0 or (suffix == "one_mask" and n_extra != 0):
        raise MasktaxError(f"n_extra must be >= 0 (and 0 for one_mask), got {n_extra}")
    if suffix != "canvas" and mask_id is None:
        raise MasktaxError(f"suffix {suffix!r} needs a mask token id")


def encode_item(
    tokenizer: Any,
    context: Sequence[Example],
    query: Example,
    *,
    fmt: str = "base",
    query_position: str = "right",
    suffix: str = "one_mask",
    n_extra: int = 0,
    mask_id: int | None = None,
    filler_id: int | None = None,
    canvas_ids: Sequence[int] | None = None,
    max_length: int | None = None,
) -> EncodedItem:
    """Encode one test point after its context (see the module docstring for the suffix forms).

    `n_extra` is the number of EXTRA positions after the answer position (0 for "one_mask");
    `canvas_ids` must hold 1 + n_extra ids; `max_length` (the model's context) is checked.
    """
    if suffix not in SUFFIXES:
        raise MasktaxError(f"unknown suffix {suffix!r}; choose one of: {', '.join(SUFFIXES)}")
    check_suffix_args(suffix, n_extra, mask_id)
    text = prompt_text(context, query, fmt=fmt, query_position=query_position, tokenizer=tokenizer)
    letters = letter_token_ids(tokenizer)
    ids, answer_pos = suffixed_ids(tokenizer, text, fmt=fmt, query_position=query_position, suffix=suffix,
                                   n_extra=n_extra, mask_id=mask_id, filler_id=filler_id, canvas_ids=canvas_ids,
                                   max_length=max_length)
    return EncodedItem(ids, answer_pos, letters[LETTERS.index(query.answer)], letters)


def suffixed_ids(
    tokenizer: Any,
    text: PromptText,
    *,
    fmt: str,
    query_position: str,
    suffix: str,
    n_extra: int,
    mask_id: int | None,
    filler_id: int | None,
    canvas_ids: Sequence[int] | None,
    max_length: int | None,
) -> tuple[list[int], int]:
    """The ids of a rendered prompt with `suffix` appended (and the rest after it where it has one), and
    the answer position: the part `encode_item` and the appendix's `encode_suite_item` share.

    The prefix is tokenized first, so an unknown suffix is reported only after the prompt is; the
    length is checked last.
    """
    ids = _prefix_ids(tokenizer, text, fmt)
    answer_pos = len(ids)
    if suffix == "one_mask":
        tail = [mask_id]
    elif suffix == "masks":
        tail = [mask_id] * (1 + n_extra)
    elif suffix == "filler":
        tail = [mask_id] + [filler_token_id(tokenizer) if filler_id is None else filler_id] * n_extra
    elif suffix == "canvas":
        if canvas_ids is None or len(canvas_ids) != 1 + n_extra:
            raise MasktaxError(f"suffix 'canvas' needs {1 + n_extra} canvas ids, got {0 if canvas_ids is None else len(canvas_ids)}")
        tail = [int(i) for i in canvas_ids]
    else:
        raise MasktaxError(f"unknown suffix {suffix!r}; choose one of: {', '.join(SUFFIXES)}")
    ids = ids + tail
    if suffix == "one_mask" or query_position != "right":
        ids = ids + _rest_ids(tokenizer, text.rest)
    check_length(len(ids), max_length)
    return ids, answer_pos
