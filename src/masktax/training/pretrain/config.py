"""The frozen config of an embedded-model pretraining run: every choice recorded in config.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from masktax.errors import MasktaxError
from masktax.training.configio import build, raise_first, read_config_file, replace_given
from masktax.training.pretrain.curriculum import Stage, default_stages


@dataclass(frozen=True)
class ModelSpec:
    """Dimensions shared by the MDLM, the Dream-like MDLM and the AR twin (Llama-style blocks)."""

    d_model: int = 192
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int = 6
    d_ff: int = 512  # SwiGLU hidden size
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_length: int = 2048  # recorded as the model's context length
    tie_embeddings: bool = True  # halves the embedding parameters of a tiny model
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if min(self.d_model, self.n_layers, self.n_heads, self.n_kv_heads, self.d_ff) < 1:
            raise MasktaxError("model dimensions must be positive")
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise MasktaxError("d_model must be divisible by n_heads, and n_heads by n_kv_heads")


@dataclass(frozen=True)
class PretrainConfig:
    """One run. Fields are grouped: objective, data, curriculum, optimisation, runtime."""

    name: str = "embedded-mdlm"
    objective: str = "mdlm"  # "mdlm" (masked diffusion) | "ar" (next-token twin)
    shift: bool = False  # MDLM with shifted logits (Dream-like); saved in Dream's native layout
    init_from: str | None = None  # HF dir (e.g. the AR twin's final/) to initialise from
    model: ModelSpec = field(default_factory=ModelSpec)
    # MDLM loss
    weighting: str = "inv_p"  # "inv_p" (LLaDA, 1/p) | "none"
    p_min: float = 1e-3  # eps of p ~ U(eps, 1)
    answer_focus_share: float = 0.5  # share of episodes with answer-focused masking
    answer_q: tuple[float, float] = (0.2, 0.8)  # q range of answer-focused masking
    eos_tail: bool = False  # EOS tail/padding is a maskable target (LLaDA SFT style)
    # AR loss
    ar_answer_weight: float = 1.0  # extra CE on the answer letters
    # data and curriculum
    words_file: str | None = None  # JSON {category: [words]}; None = masktax.tasks.words.load_words()
    stages: tuple[Stage, ...] = field(default_factory=default_stages)
    gate_threshold: float = 0.85
    gate_every: int = 50  # steps between gate evaluations
    gate_size: int = 200  # fresh held-out queries per gate evaluation
    replay: float = 0.2
    # optimisation
    batch_size: int = 16  # episodes per step
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.1  # cosine floor
    schedule: str = "constant"  # "constant" | "cosine" (after warm-up) | "wsd" (constant, then a cosine anneal)
    decay_start: int | None = None  # wsd: the step at which the anneal begins
    decay_steps: int = 1000  # wsd: length of the anneal (down to min_lr_ratio * lr)
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    max_steps: int = 20000  # cosine horizon and hard stop
    # stop early once the final curriculum stage is solved: its gate accuracy reaches `stop_gate`
    # on `stop_patience` consecutive evaluations (None: train to max_steps / the time budget)
    stop_gate: float | None = None
    stop_patience: int = 3
    # the probe suite's one-mask accuracy (first `suite_items` test points of each dataset), measured
    # at every gate of the final stage and logged to suite_eval.csv; stop_on "suite" applies
    # stop_gate to it instead of the curriculum gate (0 items: off)
    suite_items: int = 0
    # MDLM answer-focused rows: also mask the repeated word after a masked letter (S0/S1 stepping
    # stone), so the query cannot be answered by copying the repeat back to its option's letter
    mask_repeat: bool = False
    stop_on: str = "gate"
    # runtime
    seed: int = 0
    autocast: str = "auto"  # "auto" (bf16 on CUDA) | "bf16" | "off"
    compile: bool = False
    save_every: int = 500  # checkpoint interval in steps (also at exit)
    keep_checkpoints: int = 2
    log_every: int = 10
    save_dtype: str = "float32"  # dtype of final/ weights ("bfloat16" halves shipped size)

    def __post_init__(self) -> None:
        checks = [
            (self.objective in ("mdlm", "ar"), f"objective must be 'mdlm' or 'ar', got {self.objective!r}"),
            (not (self.shift and self.objective == "ar"), "shift applies to the mdlm objective only"),
            (self.weighting in ("inv_p", "none"), f"weighting must be 'inv_p' or 'none', got {self.weighting!r}"),
            (0.0 < self.p_min < 1.0, f"p_min must be in (0, 1), got {self.p_min}"),
            (0.0 <= self.answer_focus_share <= 1.0, "answer_focus_share must be in [0, 1]"),
            (0.0 < self.answer_q[0] <= self.answer_q[1] <= 1.0, "answer_q must satisfy 0 < lo <= hi <= 1"),
            (len(self.stages) > 0, "the curriculum needs at least one stage"),
            (0.0 < self.gate_threshold <= 1.0, "gate_threshold must be in (0, 1]"),
            (self.gate_every > 0 and self.gate_size > 0, "gate_every and gate_size must be positive"),
            (0.0 <= self.replay < 1.0, "replay must be in [0, 1)"),
            (self.batch_size > 0 and self.lr > 0, "batch_size and lr must be positive"),
            (self.schedule in ("constant", "cosine", "wsd"),
             f"schedule must be 'constant', 'cosine' or 'wsd', got {self.schedule!r}"),
            (self.schedule != "wsd" or (self.decay_start is not None and self.decay_start >= 0 and self.decay_steps > 0),
             "schedule 'wsd' needs decay_start >= 0 and decay_steps > 0"),
            (self.max_steps > 0 and self.warmup_steps >= 0, "max_steps must be positive, warmup_steps >= 0"),
            (self.stop_gate is None or 0.0 <= self.stop_gate <= 1.0, f"stop_gate must be in [0, 1], got {self.stop_gate}"),
            (self.stop_patience >= 1, f"stop_patience must be at least 1, got {self.stop_patience}"),
            (self.suite_items >= 0, f"suite_items must be >= 0, got {self.suite_items}"),
            (self.stop_on in ("gate", "suite"), f"stop_on must be gate or suite, got {self.stop_on!r}"),
            (self.stop_on == "gate" or self.suite_items > 0, "stop_on 'suite' needs suite_items > 0"),
            (self.autocast in ("auto", "bf16", "off"), f"autocast must be auto, bf16 or off, got {self.autocast!r}"),
            (self.save_every > 0 and self.log_every > 0, "save_every and log_every must be positive"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be at least 1"),
            (self.save_dtype in ("float32", "bfloat16", "float16"), f"unknown save_dtype {self.save_dtype!r}"),
        ]
        raise_first(checks)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["stages"] = [s.to_dict() for s in self.stages]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "pretrain config") -> PretrainConfig:
        """The config in JSON object `data` (a config file, or a run's config.json), checked field by field
        (`configio.build`; errors name `source`)."""
        return build(cls, data, source=source, what="pretrain")

    def replace(self, **changes: Any) -> PretrainConfig:
        """A copy with the given fields changed (None values are ignored)."""
        return replace_given(self, changes)


def load_config(path: str | Path, **overrides: Any) -> PretrainConfig:
    """Read a JSON config file (missing fields take the defaults above), then apply the non-None overrides."""
    return PretrainConfig.from_dict(read_config_file(path), source=f"config '{path}'").replace(**overrides)
