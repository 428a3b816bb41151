"""`masktax suite`: export the probe suite of [P1] to JSONL, and show one prompt exactly as a model sees it.

    masktax suite export suite/ --seed 0 --n-test 1000
    masktax suite show --dataset verb__largest --index 3 --format chat --suffix masks --n-extra 5

`show` renders a test point after its in-context examples, encodes it with `masktax.prompts`
(the same code the probes use) and prints the DECODED token ids: the mask appears as the
tokenizer's mask token string, and a word-level tokenizer shows its tokens joined by spaces.
stdout gets exactly that text (plus one "\\n" when it is a terminal), so `> prompt.txt` captures
the model's input; a one-line header (token count, answer position, answer letter) goes to stderr.
Without --model the embedded word-level tokenizer is used; with --model only the tokenizer is
loaded (a card name, an embedded name, a checkpoint directory or a cached Hub id).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from masktax.errors import MasktaxError
from masktax.prompts.render import ARRANGEMENTS, FORMATS, QUERY_POSITIONS
from masktax.tasks.suite import N_DISTRACTOR_CONTEXT, N_RELEVANT_CONTEXT, dataset_names

SHOW_SUFFIXES = ("one_mask", "masks", "filler")  # "canvas" needs a model's noise tokens: probes only
TOKENIZER_PATTERNS = ["tokenizer*", "special_tokens_map.json", "vocab.*", "merges.txt", "*.model", "config.json",
                      "added_tokens.json", "*.py"]


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


def embedded_tokenizer() -> Any:
    """The word-level tokenizer over the suite's vocabulary (what the embedded models use)."""
    from masktax.embedded.tokenizer import build_tokenizer
    from masktax.tasks.words import all_words

    return build_tokenizer(all_words())


def tokenizer_dir(name: str) -> Path:
    """The local directory holding `name`'s tokenizer, fetching only tokenizer files for a known card.

    Embedded names and local directories resolve like `masktax.models.load`; other names must be a
    model card (`masktax models`) or a Hub id already in the local cache.
    """
    from masktax.models.cards import card_for
    from masktax.models.load import hub_snapshot, resolve_path

    card = card_for(name)
    if name.lower().startswith("embedded-") or Path(name).expanduser().exists():
        return resolve_path(name, card)
    return hub_snapshot(name, card, TOKENIZER_PATTERNS)


def model_tokenizer(name: str, *, trust_remote_code: bool = False, mask_token_id: int | None = None) -> tuple[Any, int]:
    """(tokenizer, id shown at the answer position) for a model name, loading no weights.

    Mask id as in `masktax.models.load`: explicit > model card > tokenizer > config.json
    `mask_token_id`; a model without one (an AR baseline) shows its pad (else EOS) token there.
    """
    import json

    from masktax.models.cards import card_for
    from masktax.models.load import load_tokenizer

    path = tokenizer_dir(name)
    tokenizer = load_tokenizer(path, trust_remote_code)
    if tokenizer is None:
        raise MasktaxError(f"'{name}' ships no tokenizer files (looked in {path})")
    card = card_for(name)
    config = json.loads((path / "config.json").read_text("utf-8")) if (path / "config.json").is_file() else {}
    candidates = (mask_token_id, card.mask_id if card else None, getattr(tokenizer, "mask_token_id", None),
                  config.get("mask_token_id"), tokenizer.pad_token_id, tokenizer.eos_token_id)
    slot = next((c for c in candidates if c is not None), None)
    if slot is None:
        raise MasktaxError(f"the tokenizer of '{name}' has no mask, pad or EOS token; pass --mask-token-id")
    return tokenizer, int(slot)


def show_prompt(cfg: ShowConfig, tokenizer: Any, mask_id: int) -> ShownPrompt:
    """Encode `cfg`'s test point with `masktax.prompts.encode_item` and decode the ids back to text."""
    from masktax.prompts.encode import encode_item
    from masktax.prompts.render import arrange
    from masktax.tasks.suite import get_dataset

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


def header(cfg: ShowConfig, shown: ShownPrompt, tokenizer_name: str) -> str:
    """The one-line summary `masktax suite show` writes to stderr."""
    extra = f" +{cfg.n_extra}" if cfg.suffix != "one_mask" else ""
    return (f"masktax: {cfg.dataset} test {cfg.index} ({cfg.format}, {cfg.arrangement}, query {cfg.query_position}, "
            f"{cfg.suffix}{extra}; tokenizer {tokenizer_name}): {len(shown.ids)} tokens, answer position "
            f"{shown.answer_pos}, answer {shown.answer} (id {shown.answer_id})")


def export(
    out: str = typer.Argument(..., metavar="DIR", help="Output directory (created; files are overwritten)."),
    seed: int = typer.Option(0, "--seed", help="Suite seed (same seed: byte-identical files)."),
    n_test: int = typer.Option(1000, "--n-test", help="Test points per dataset (paper: 1000)."),
) -> None:
    """Write the 16 datasets as JSONL (tests + fixed context) and manifest.json with sha256 digests."""
    from masktax.tasks.export import MANIFEST, export_suite

    manifest = export_suite(out, seed=seed, n_test=n_test)
    print(f"masktax: wrote {len(manifest['datasets'])} datasets x {n_test} tests (seed {seed}) to {out}; "
          f"digests in {Path(out) / MANIFEST}")


def show(
    dataset: str = typer.Option("country__smallest", "--dataset", help="Dataset name (relevant__distractor)."),
    index: int = typer.Option(0, "--index", help="Test point index (0-based)."),
    n_test: int = typer.Option(1000, "--n-test", help="Test points per dataset (the range of --index)."),
    seed: int = typer.Option(0, "--seed", help="Suite and arrangement seed."),
    fmt: str = typer.Option("base", "--format", help="base or chat (the tokenizer's chat template)."),
    arrangement: str = typer.Option("mixed", "--arrangement", help="mixed (seeded shuffle) or block."),
    block_position: int = typer.Option(None, "--block-position",
                                       help="Block arrangement: distractors before the relevant block (default: all)."),
    n_distractor: int = typer.Option(N_DISTRACTOR_CONTEXT, "--n-distractor", help="Distractor examples (0..40)."),
    query_position: str = typer.Option("right", "--query-position", help="right, left or middle."),
    suffix: str = typer.Option("one_mask", "--suffix", help="one_mask, masks or filler."),
    n_extra: int = typer.Option(0, "--n-extra", help="Extra masks / filler tokens after the answer position."),
    model: str = typer.Option(None, "--model", help="Use this model's tokenizer (name or checkpoint dir)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the tokenizer's own code."),
    mask_token_id: int = typer.Option(None, "--mask-token-id", help="Mask id when the tokenizer has none."),
    ids: bool = typer.Option(False, "--ids", help="Print the token ids (space-separated) instead of the text."),
) -> None:
    """Print one test prompt exactly as the model sees it (decoded token ids); a summary line to stderr."""
    cfg = ShowConfig(dataset=dataset, index=index, n_test=n_test, seed=seed, format=fmt, arrangement=arrangement,
                     block_position=block_position, n_distractor=n_distractor, query_position=query_position,
                     suffix=suffix, n_extra=n_extra)
    if model is None:
        tokenizer, name = embedded_tokenizer(), "embedded word-level"
        mask_id = tokenizer.mask_token_id if mask_token_id is None else mask_token_id
    else:
        tokenizer, mask_id = model_tokenizer(model, trust_remote_code=trust_remote_code, mask_token_id=mask_token_id)
        name = model
    shown = show_prompt(cfg, tokenizer, mask_id)
    print(header(cfg, shown, name), file=sys.stderr)
    out = " ".join(map(str, shown.ids)) + "\n" if ids else shown.text
    sys.stdout.write(out + ("\n" if sys.stdout.isatty() and not out.endswith("\n") else ""))
    sys.stdout.flush()


suite_app = typer.Typer(name="suite", help="Export the probe suite, or show one prompt as a model sees it.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
suite_app.command("export")(export)
suite_app.command("show")(show)


def register(app: typer.Typer) -> None:
    app.add_typer(suite_app, name="suite")
