"""`masktax suite`: export the probe suite of [P1] to JSONL, and show one prompt exactly as a model sees it.

    masktax suite export suite/ --seed 0 --n-test 1000
    masktax suite export mdc/ --suite mdc --seed 0
    masktax suite show --dataset verb__largest --index 3 --format chat --suffix masks --n-extra 5

`show` renders a test point after its in-context examples, encodes it with `masktax.prompts`
(the same code the probes use) and prints the DECODED token ids: the mask appears as the
tokenizer's mask token string, and a word-level tokenizer shows its tokens joined by spaces.
stdout gets exactly that text (plus one "\\n" when it is a terminal), so `> prompt.txt` captures
the model's input; a one-line header (token count, answer position, answer letter) goes to stderr.
Without --model the embedded word-level tokenizer is used; with --model only the tokenizer is
loaded (a card name, an embedded name, a checkpoint directory or a cached Hub id). The work is
`masktax.tasks.export` and `masktax.prompts.show` (with `masktax.models.tokenizer_only`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from masktax.models.tokenizer_only import prompt_tokenizer
from masktax.prompts.show import ShowConfig, header, show_prompt
from masktax.tasks.export import MANIFEST, export_suite
from masktax.tasks.suite import N_DISTRACTOR_CONTEXT


def export(
    out: str = typer.Argument(..., metavar="DIR", help="Output directory (created; files are overwritten)."),
    seed: int = typer.Option(0, "--seed", help="Suite seed (same seed: byte-identical files)."),
    n_test: int = typer.Option(1000, "--n-test", help="Test points per dataset (paper: 1000)."),
    suite: str = typer.Option("main", "--suite", help="main (16 datasets) or mdc (20 classification sets)."),
) -> None:
    """Write the 16 datasets (or the mdc sets) as JSONL (tests + context) and manifest.json with sha256 digests."""
    manifest = export_suite(out, seed=seed, n_test=n_test, suite=suite)
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
    tokenizer, mask_id = prompt_tokenizer(model, trust_remote_code=trust_remote_code, mask_token_id=mask_token_id)
    shown = show_prompt(cfg, tokenizer, mask_id)
    print(header(cfg, shown, model), file=sys.stderr)
    out = " ".join(map(str, shown.ids)) + "\n" if ids else shown.text
    sys.stdout.write(out + ("\n" if sys.stdout.isatty() and not out.endswith("\n") else ""))
    sys.stdout.flush()


suite_app = typer.Typer(name="suite", help="Export the probe suite, or show one prompt as a model sees it.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
suite_app.command("export")(export)
suite_app.command("show")(show)


def register(app: typer.Typer) -> None:
    app.add_typer(suite_app, name="suite")
