"""A gated curriculum for the embedded models (EMBEDDED_NOTES round 2, with a gentler S1).

Minutes of plain training leave a tiny MDLM at chance on the category rule; easy stages first, then
harder ones, make it learnable. A stage ends when the model reaches `threshold` (0.85) on a fresh
held-out batch of queries of that stage (one mask at the answer for an MDLM, the next token for an
AR model) AND it has trained `min_steps` in the stage. A share `replay` of episodes (0.2) replays
earlier stages so solved stages are not forgotten.

Default stages:
- S0: 3 categories per episode, relevant examples only, 4-8 examples, the chosen word repeated
  after the letter (`Answer:[B quirky].`), the stepping stone that let the MDLM link letter and
  option;
- S1a/S1b: the repeat removed gently (0.5, then 0), each for at least `min_steps` (the MDLM stalled
  when it went from 1.0 to 0.25 at once);
- S2: 6 categories and the word rule families (category, odd one out, fixed letter), 4-12 examples;
- S3: 0-40% distractors (number rules), 6-16 examples;
- S4: the full task: all categories and every rule family (number rules as queries too), 10-50
  examples with 10-80% distractors (the suite's longest prompt is 10 + 40), up to 1300 tokens,
  plus a tail of up to 200 tokens after the query (EOS tail runs only).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from masktax.training.configio import build
from masktax.training.pretrain.corpus import RULES, EpisodeSpec


@dataclass(frozen=True)
class Stage:
    name: str
    spec: EpisodeSpec = field(default_factory=EpisodeSpec)
    min_steps: int = 0  # steps to train in this stage before the gate may open

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "curriculum stage") -> Stage:
        """The stage in JSON object `data`, checked field by field (`configio.build`)."""
        return build(cls, data, source=source, what="stage")

    def to_dict(self) -> dict:
        return {"name": self.name, "spec": asdict(self.spec), "min_steps": self.min_steps}


def default_stages(*, max_tokens: int = 1300, max_tail: int = 200, min_steps: int = 150) -> tuple[Stage, ...]:
    """The five-stage curriculum described in the module docstring (S1 split in two)."""
    cat = ("category",)
    # Repeats in `rules` weight the draw: the category rule (what the probes ask) stays the most
    # common; number rules (hard for a word-level model: 1000 unordered tokens) come last.
    words = ("category", "category", "odd_one_out", "fixed_letter")
    full = ("category", "category", "category", *RULES)
    return (
        Stage("S0", EpisodeSpec((4, 8), (0.0, 0.0), 1.0, 3, cat, 0, 256)),
        Stage("S1a", EpisodeSpec((4, 8), (0.0, 0.0), 0.5, 3, cat, 0, 256), min_steps),
        Stage("S1b", EpisodeSpec((4, 8), (0.0, 0.0), 0.0, 3, cat, 0, 256), min_steps),
        Stage("S2", EpisodeSpec((4, 12), (0.0, 0.0), 0.0, 6, words, 0, 384), min_steps),
        Stage("S3", EpisodeSpec((6, 16), (0.0, 0.4), 0.0, 6, words, 0, 512), min_steps),
        Stage("S4", EpisodeSpec((10, 50), (0.1, 0.8), 0.0, 0, full, max_tail, max_tokens), min_steps),
    )


@dataclass
class CurriculumState:
    """Where the curriculum is; saved in every checkpoint."""

    stage: int = 0
    stage_start: int = 0  # step at which the current stage began
    advances: list[list[int]] = field(default_factory=list)  # [step, new stage index]
    last_gate: float | None = None  # accuracy of the latest gate evaluation
    gates: list[list[float]] = field(default_factory=list)  # [step, stage, accuracy]
    suite: list[list[float]] = field(default_factory=list)  # [step, probe-suite accuracy] (final stage)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CurriculumState:
        return cls(**data)


def gate(state: CurriculumState, *, step: int, accuracy: float, stages: tuple[Stage, ...], threshold: float) -> bool:
    """Record a gate evaluation at `step`; advance (and return True) when the stage is passed.

    Advances when `accuracy >= threshold`, the stage trained at least its `min_steps`, and a
    later stage exists.
    """
    state.last_gate = accuracy
    state.gates.append([step, state.stage, accuracy])
    trained = step - state.stage_start
    if accuracy >= threshold and trained >= stages[state.stage].min_steps and state.stage + 1 < len(stages):
        state.stage += 1
        state.stage_start = step
        state.advances.append([step, state.stage])
        return True
    return False


def pick_stage(rng: random.Random, state: CurriculumState, replay: float) -> int:
    """The stage of one training episode: the current one, or with prob `replay` an earlier one."""
    if state.stage > 0 and rng.random() < replay:
        return rng.randrange(state.stage)
    return state.stage


def solved(
    state: CurriculumState, *, n_stages: int, threshold: float | None, patience: int, on: str = "gate"
) -> bool:
    """True when the last `patience` evaluations were all >= threshold: curriculum gates on the final
    stage (`on="gate"`), or probe-suite accuracies (`on="suite"`, measured in the final stage only)."""
    if threshold is None or patience < 1:
        return False
    if on == "suite":
        return len(state.suite) >= patience and all(acc >= threshold for _, acc in state.suite[-patience:])
    if len(state.gates) < patience:
        return False
    recent = state.gates[-patience:]
    return all(int(stage) == n_stages - 1 and acc >= threshold for _, stage, acc in recent)
