"""One test point of the suite exactly as a model sees it: what `masktax suite show` prints.

`show_prompt` renders a test point after its in-context examples, encodes it with
`encode_item` (the same code the probes use) and decodes the ids back: the mask appears as the
tokenizer's mask token string, and a word-level tokenizer shows its tokens joined by spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from masktax.errors import MasktaxError
from masktax.prompts.encode import encode_item
from masktax.prompts.render import ARRANGEMENTS, FORMATS, QUERY_POSITIONS, arrange
from masktax.tasks.suite import N_DISTRACTOR_CONTEXT, N_RELEVANT_CONTEXT, dataset_names, get_dataset

SHOW_SUFFIXES = ("one_mask", "masks", "filler")  # "canvas" needs a model's noise tokens: probes only


@dataclass(frozen=True)
class ShowConfig:
    """One prompt to show; every field is a `masktax suite show` option."""

    dataset: str = "country__smallest"  # one of the 16 dataset names
    index: int = 0  # which test point (0-based)
    n_test: int = 1000  # test points per dataset (the range --index must fall in)
    seed: int = 0  # suite and arrangement seed, as in `masktax probe --seed`
    format: str = "base"  # "base" text or the tokenizer's "chat" template
    arrangement: str = "mixed"  # "mixed" (seeded shuffle) or "block" (relevant examples as one block)
    block_position: int | None = None  # block: distractors before the block; None = n_distractor (next to a right query)
    n_distractor: int = N_DISTRACTOR_CONTEXT  # distractor examples in the context (0..40)
    query_position: str = "right"  # where the test point sits: right, left or middle of the context
    suffix: str = "one_mask"  # one_mask (`<mask>].`), masks (1 + n_extra masks), filler (mask + n_extra " .")
    n_extra: int = 0  # extra tokens after the answer position (masks / filler only)

    def __post_init__(self) -> None:
        names = dataset_names()
        if self.dataset not in names:
            raise MasktaxError(f"unknown dataset '{self.dataset}'; choose from {', '.join(names)}")
        if self.n_test < 1:
            raise MasktaxError(f"--n-test must be at least 1, got {self.n_test}")
        if not 0 <= self.index < self.n_test:
            raise MasktaxError(f"--index must be in 0..{self.n_test - 1}, got {self.index}")
        for flag, value, choices in (("--format", self.format, FORMATS), ("--arrangement", self.arrangement, ARRANGEMENTS),
                                     ("--query-position", self.query_position, QUERY_POSITIONS),
                                     ("--suffix", self.suffix, SHOW_SUFFIXES)):
            if value not in choices:
                raise MasktaxError(f"unknown {flag} '{value}'; choose from {', '.join(choices)}")
        if not 0 <= self.n_distractor <= N_DISTRACTOR_CONTEXT:
            raise MasktaxError(f"--n-distractor must be in 0..{N_DISTRACTOR_CONTEXT}, got {self.n_distractor}")
        if self.block_position is not None:
            if self.arrangement != "block":
                raise MasktaxError("--block-position needs --arrangement block")
            if not 0 <= self.block_position <= self.n_distractor:
                raise MasktaxError(f"--block-position must be in 0..{self.n_distractor}, got {self.block_position}")
        if self.n_extra < 0:
            raise MasktaxError(f"--n-extra must be >= 0, got {self.n_extra}")
        if self.suffix == "one_mask" and self.n_extra:
            raise MasktaxError("--n-extra needs --suffix masks or filler (one_mask has no extra tokens)")


@dataclass(frozen=True)
class ShownPrompt:
    """An encoded prompt and its decoded text (what `masktax suite show` prints)."""

    text: str  # the decoded ids, special tokens included
    ids: list[int]
    answer_pos: int  # index into ids of the answer position (the first appended id)
    answer: str  # the correct letter
    answer_id: int


def show_prompt(cfg: ShowConfig, tokenizer: Any, mask_id: int) -> ShownPrompt:
    """Encode `cfg`'s test point with `masktax.prompts.encode_item` and decode the ids back to text."""
    if not 0 <= mask_id < len(tokenizer):
        raise MasktaxError(f"mask token id {mask_id} is outside the tokenizer's vocabulary ({len(tokenizer)} tokens)")
    dataset = get_dataset(cfg.dataset, seed=cfg.seed, n_test=cfg.index + 1)  # tests are prefix-stable
    block = cfg.block_position
    if cfg.arrangement == "block" and block is None:
        block = cfg.n_distractor
    context = arrange(dataset, cfg.arrangement, seed=cfg.seed, n_relevant=N_RELEVANT_CONTEXT,
                      n_distractor=cfg.n_distractor, block_position=block)
    query = dataset.tests[cfg.index]
    item = encode_item(tokenizer, context, query, fmt=cfg.format, query_position=cfg.query_position,
                       suffix=cfg.suffix, n_extra=cfg.n_extra, mask_id=mask_id)
    text = tokenizer.decode(item.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return ShownPrompt(text=text, ids=list(item.ids), answer_pos=item.answer_pos, answer=query.answer,
                       answer_id=item.answer_id)


def header(cfg: ShowConfig, shown: ShownPrompt, tokenizer_name: str | None) -> str:
    """The one-line summary `masktax suite show` writes to stderr (tokenizer None: the embedded one)."""
    tokenizer_name = tokenizer_name or "embedded word-level"
    extra = f" +{cfg.n_extra}" if cfg.suffix != "one_mask" else ""
    return (f"masktax: {cfg.dataset} test {cfg.index} ({cfg.format}, {cfg.arrangement}, query {cfg.query_position}, "
            f"{cfg.suffix}{extra}; tokenizer {tokenizer_name}): {len(shown.ids)} tokens, answer position "
            f"{shown.answer_pos}, answer {shown.answer} (id {shown.answer_id})")
