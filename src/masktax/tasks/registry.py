"""The suites a probe can run on (`--suite`): [P1]'s main suite and its appendix suites.

| suite | datasets | answer | default shots |
|---|---|---|---|
| main | the 16 datasets of masktax.tasks.suite | A / B / C | 10 relevant + 40 distractor |
| mdc | 20 synthetic sets, masktax.tasks.mdc (4 generators x 5 seeds) | Above / Below | 30 |
| hotpotqa | HotPotQA distractor, binary questions (masktax.tasks.external) | A / B | 1 |
| icl | sst2, rotten_tomatoes, ag_news, mrpc, rte, qnli (masktax.tasks.external) | label words | 25 |

`SuiteChoice` is what a probe's options ask for; `suite_datasets` builds the named datasets (all of
the suite by default). The main suite keeps its own path (masktax.probes.run.select_datasets), so
its runs are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from masktax.errors import MasktaxError
from masktax.tasks import external, mdc
from masktax.tasks.appendix import LABEL_STYLES, TaskSet
from masktax.tasks.suite import DATASET_NAMES as MAIN_NAMES

MAIN = "main"
SUITES: dict[str, tuple[str, ...]] = {
    MAIN: MAIN_NAMES,
    mdc.SUITE: mdc.DATASET_NAMES,
    "hotpotqa": ("hotpotqa",),
    "icl": tuple(external.ICL_SETS),
}
DEFAULT_SHOTS = {mdc.SUITE: mdc.SHOTS, "hotpotqa": 1, "icl": external.ICL_SHOTS}


@dataclass(frozen=True)
class SuiteChoice:
    """A suite with its in-context size, label style and local data directory (external sets)."""

    name: str = MAIN
    shots: int | None = None  # None: the suite's default
    labels: str = "words"
    data: str | None = None

    def __post_init__(self) -> None:
        if self.name not in SUITES:
            raise MasktaxError(f"--suite must be one of {', '.join(SUITES)}, got '{self.name}'")
        if self.name == MAIN and (self.shots is not None or self.labels != "words" or self.data is not None):
            raise MasktaxError("--shots, --labels and --data apply to the appendix suites (--suite mdc, hotpotqa, icl)")
        if self.shots is not None and self.shots < 0:
            raise MasktaxError(f"--shots must be at least 0, got {self.shots}")
        if self.labels not in LABEL_STYLES:
            raise MasktaxError(f"--labels must be one of {', '.join(LABEL_STYLES)}, got '{self.labels}'")

    @property
    def is_main(self) -> bool:
        return self.name == MAIN


def suite_datasets(choice: SuiteChoice, *, seed: int = 0, names: tuple[str, ...] | None = None,
                   cache_dir: str | None = None) -> list[TaskSet]:
    """The datasets of an appendix suite (those in `names`, in that order; default all)."""
    if choice.is_main:
        raise MasktaxError("the main suite is built by masktax.tasks.suite.build_suite")
    valid = SUITES[choice.name]
    unknown = [n for n in names or () if n not in valid]
    if unknown:
        raise MasktaxError(f"unknown dataset(s) {', '.join(unknown)} of suite {choice.name}; choose from {', '.join(valid)}")
    shots = DEFAULT_SHOTS[choice.name] if choice.shots is None else choice.shots
    out: list[TaskSet] = []
    for name in names or valid:
        if choice.name == mdc.SUITE:
            task = mdc.build_dataset(name, seed=seed, shots=shots)
        elif choice.name == "hotpotqa":
            task = external.build_hotpotqa(seed=seed, shots=shots, data_dir=choice.data, cache_dir=cache_dir)
        else:
            task = external.build_icl(name, seed=seed, shots=shots, data_dir=choice.data, cache_dir=cache_dir)
        out.append(task.with_labels(choice.labels))
    return out
