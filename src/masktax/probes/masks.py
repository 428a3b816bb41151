"""`masks`: accuracy against masks appended after the answer position ([P1] mask scaling).

10 relevant + 40 distractor examples, randomly mixed; the prompt ends `Answer:[` + the answer
position + x extra masks (one decoding step; only the first mask is scored). For uniform-noise
models (DiffusionGemma) the answer position and the x extras are canvas tokens (random tokens,
seeded per item), recorded with suffix "canvas". The `filler` probe is the same sweep with dots.

A causal model never sees tokens after the position it predicts, so the sweep does not apply to AR
models: they get a single reference point (the one-mask accuracy), drawn as a dashed line.

The tax is measured from x = 2 (FORMAT_X): the first x whose prompt has the length of the one-mask
format `Answer:[<mask>].` (`]` and `.` are two tokens in the embedded tokenizer). At x = 0 and 1
the text ends early, a format change that an in-place MDLM (trained on episodes that always close
`].`) can suffer from more than from any number of masks; the curves still show those points.

    masktax probe masks --model embedded-mdlm --grid 0,2,20,200 --n-items 8 --out runs/masks

With `--suite mdc|hotpotqa|icl` the same sweep runs on [P1]'s appendix suites (docs/suites.md);
`--shares 0,0.05,0.1,0.2` sweeps the masks as a share of the input length instead ([P1] A.7, A.8):
series "share", x = share s, max(1, round(s * L)) masks in all, L = tokens before the answer.

    masktax probe masks --suite mdc --model embedded-mdlm --labels letters --shares 0,0.1,0.2 --n-items 8 --out runs/mdc

For a block-causal model (LLaDA2, SDAR/TraDo, Fast-dLLM v2) only the masks inside the answer's
attention block are visible to it; `--block-offset o` places every answer at offset o of its block
(newlines prepended), so the tax can only grow for x <= B - 1 - o (docs/models.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes.items import Cell
from masktax.probes.options import flag, int_grid, share_grid, suite_choice
from masktax.probes.run import ProbeRun, score_cells
from masktax.render import markdown
from masktax.render.accuracy_report import AccuracyReport, ReportChoice
from masktax.results.summary import REFERENCE

NAME = "masks"
DESCRIPTION = "accuracy vs number of extra masks appended after the answer mask"
X_LABEL = "extra masks after the answer position"
X_MEANING = "x = number of EXTRA mask tokens after the answer position (x = 0: prompt ends `Answer:[<mask>`)"
GRID = (0, 1, 2, 5, 10, 20, 50, 100, 200)
FORMAT_X = 2
SHARE = "share"  # the series of a --shares sweep
SHARE_LABEL = "masks as a share of the input length"
SHARE_MEANING = ("x = share s of the input length L (tokens before the answer position): the prompt ends with "
                 "max(1, round(s L)) masks in all, the first one the answer position ([P1] appendix)")


def change(probe: str, what: str) -> markdown.Change:
    """How an appended-token sweep (masks, filler) reports its tax."""
    return markdown.Change(
        what=what, heading="Mask tax", baseline_x=FORMAT_X,
        base_note=(f" For {probe} the baseline is x = {FORMAT_X} when the grid has it: the first prompt with the "
                   "length of the one-mask format `Answer:[<mask>].`; x = 0 and 1 end the text early."),
        glance=f"{what}: acc(x = 2) - acc(x last), points [paired 95% CI]",
    )


CHANGE = change(NAME, "mask tax")


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=GRID, metadata=flag("Comma-separated x values: extra masks after the answer."))
    shares: tuple[float, ...] | None = field(default=None, metadata=flag(
        "Instead of --grid: comma-separated shares of the input length (e.g. 0,0.05,0.1,0.2).", stored_if_set=True))
    suite: str = field(default="main", metadata=flag(
        "main (the 16 datasets), or an appendix suite: mdc, hotpotqa, icl (docs/suites.md).", stored_if_set=True))
    shots: int | None = field(default=None, metadata=flag(
        "Appendix suites: in-context examples (default: mdc 30, hotpotqa 1, icl 25).", stored_if_set=True))
    labels: str = field(default="words", metadata=flag(
        "Appendix suites: 'words' ([P1]'s labels) or 'letters' (A/B/C: word-level tokenizers).", stored_if_set=True))
    data: str | None = field(default=None, metadata=flag(
        "Appendix suites: directory of the hotpotqa / icl files (else the datasets cache).", stored_if_set=True))
    block_offset: int | None = field(default=None, metadata=flag(
        "Block-causal models: prepend newlines so the answer sits at this offset (0 .. B-1) in its attention "
        "block; only the masks inside that block are visible to it (docs/models.md).", stored_if_set=True))

    def __post_init__(self) -> None:
        if self.block_offset is not None and self.block_offset < 0:
            raise MasktaxError(f"--block-offset must be 0 or more, got {self.block_offset}")
        object.__setattr__(self, "grid", int_grid(self.grid, NAME))
        if self.shares is not None:
            if self.grid != GRID:
                raise MasktaxError("give --grid (extra masks) or --shares (shares of the input length), not both")
            object.__setattr__(self, "shares", share_grid(self.shares, "--shares"))
        suite_choice(self)  # validates --suite, --shots, --labels, --data


def appended_cells(suffix: str, grid: tuple[int, ...], kind: str) -> list[Cell]:
    """x extra tokens of kind `suffix` after the answer position; AR models: the one reference cell."""
    if kind == "ar":
        return [Cell(series=REFERENCE, x=0)]
    return [Cell(series=suffix, x=x, suffix=suffix, n_extra=x, size_hint=x) for x in grid]


def cells(options: Options, kind: str) -> list[Cell]:
    if options.shares is None:
        made = appended_cells("masks", options.grid, kind)
    elif kind == "ar":
        made = [Cell(series=REFERENCE, x=0)]
    else:
        made = [Cell(series=SHARE, x=s, suffix="masks", mask_fraction=s, size_hint=round(1000 * s))
                for s in options.shares]
    return [dataclasses.replace(c, block_offset=options.block_offset) for c in made]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind), applicable=lm.kind != "ar")


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="sweep", change=CHANGE)
SHARE_REPORT = AccuracyReport(NAME, "accuracy vs masks as a share of the input length", SHARE_LABEL, SHARE_MEANING,
                              plots="line", change=markdown.Change(what="mask tax (share sweep)"))
summarize, to_csv = REPORT.summarize, REPORT.to_csv


def report_of(summary: dict) -> AccuracyReport:
    """The share sweep's report when the run swept --shares, else the extra-masks report."""
    shares = any(p["series"] == SHARE for points in summary["models"].values() for p in points)
    return SHARE_REPORT if shares else REPORT


CHOICE = ReportChoice(report_of)
plot, render, glance = CHOICE.plot, CHOICE.render, CHOICE.glance
