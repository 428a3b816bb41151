"""`SMConfig`: every choice of a soft-masking training run [P2], recorded in config.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masktax.training.configio import build, raise_first, read_config_file, replace_given

TUNINGS = ("full", "lora", "dora")


@dataclass(frozen=True)
class SMConfig:
    """One run. Groups: model and tuning, soft-masking, MDLM loss and data, optimisation, runtime."""

    name: str = "soft-mask"
    init_from: str = "embedded-mdlm"  # model to continue: a native checkpoint dir, or a name `masktax models` knows
    tuning: str = "full"  # "full" fine-tuning, or a "lora" / "dora" adapter (peft) on the attention projections
    lora_r: int = 16  # [P2]: DoRA r = 16 on q, k, v, o for Dream-7B
    lora_alpha: float = 32.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "attn_out")  # names absent are skipped
    # soft-masking [P2]
    k: int = 3  # top-k tokens in the blend: 3 for language, 1 for code
    p_sm: float = 0.8  # probability that a batch takes the two-pass soft-masked step (paper's best; 1.0 hurts)
    omega_s: float = 1e-6  # initial values (reference init_scale 0, centre -0.75, steepness 10 / 1.5)
    omega_a: float = 6.66
    omega_b: float = -0.75
    omega_lr: float = 1e-3  # the omega group's learning rate: 1e-3 language, 1e-2 code
    omega_eps: float = 1e-15  # Adam epsilon of the omega group (gradients are ~omega_s-scaled at init)
    fraction: float = 0.8  # recorded in soft_mask.json: samplers soft-mask the first 80% of decoding
    # MDLM loss (as `masktax pretrain`) and data: episodes of the embedded training corpus
    weighting: str = "inv_p"  # "inv_p" (1/p, LLaDA) | "none"
    p_min: float = 1e-3  # eps of p ~ U(eps, 1)
    answer_focus_share: float = 0.5  # share of episodes with answer-focused masking (as pretraining)
    answer_q: tuple[float, float] = (0.2, 0.8)
    eos_tail: bool = False
    stage: str = "S4"  # curriculum stage of `training.pretrain.curriculum.default_stages()` whose episodes train
    words_file: str | None = None  # JSON {category: [words]}; None = the package word lists
    data: str | None = None  # OpenOrca-layout JSON/JSONL (system_prompt, question, response); None = corpus
    max_length: int = 1024  # instruction data: tokens per example (responses are cut to fit)
    # optimisation
    batch_size: int = 16
    lr: float = 3e-4  # backbone: 3e-4 from scratch / full, 1e-5 for adapters ([P2])
    schedule: str = "constant"  # "constant" | "cosine" after warm-up
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    max_steps: int = 2000
    # runtime
    seed: int = 0
    mixed_precision: str = "auto"  # accelerate's: "auto" (bf16 on CUDA) | "bf16" | "no"
    save_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10

    def __post_init__(self) -> None:
        checks = [
            (self.tuning in TUNINGS, f"tuning must be one of {', '.join(TUNINGS)}, got {self.tuning!r}"),
            (self.lora_r >= 1 and self.lora_alpha > 0, "lora_r must be >= 1 and lora_alpha positive"),
            (len(self.lora_targets) > 0, "lora_targets must name at least one module"),
            (isinstance(self.k, int) and self.k >= 1, f"k must be a positive integer, got {self.k!r}"),
            (0.0 <= self.p_sm <= 1.0, f"p_sm must be in [0, 1], got {self.p_sm}"),
            (0.0 < self.omega_s < 1.0, f"omega_s must be in (0, 1), got {self.omega_s}"),
            (self.omega_a > 1e-6 and self.omega_b < -1e-6, "omega_a must be > 1e-6 and omega_b < -1e-6"),
            (self.omega_lr >= 0 and self.omega_eps > 0, "omega_lr must be >= 0 and omega_eps positive"),
            (0.0 <= self.fraction <= 1.0, f"fraction must be in [0, 1], got {self.fraction}"),
            (self.weighting in ("inv_p", "none"), f"weighting must be 'inv_p' or 'none', got {self.weighting!r}"),
            (0.0 < self.p_min < 1.0, f"p_min must be in (0, 1), got {self.p_min}"),
            (0.0 <= self.answer_focus_share <= 1.0, "answer_focus_share must be in [0, 1]"),
            (0.0 < self.answer_q[0] <= self.answer_q[1] <= 1.0, "answer_q must satisfy 0 < lo <= hi <= 1"),
            (self.batch_size > 0 and self.lr > 0, "batch_size and lr must be positive"),
            (self.max_length >= 8, f"max_length must be at least 8, got {self.max_length}"),
            (self.schedule in ("constant", "cosine"), f"schedule must be 'constant' or 'cosine', got {self.schedule!r}"),
            (self.max_steps > 0 and self.warmup_steps >= 0, "max_steps must be positive, warmup_steps >= 0"),
            (self.mixed_precision in ("auto", "bf16", "no"), "mixed_precision must be auto, bf16 or no"),
            (self.save_every > 0 and self.log_every > 0, "save_every and log_every must be positive"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be at least 1"),
        ]
        raise_first(checks)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "train-sm config") -> SMConfig:
        """The config in JSON object `data`, checked field by field (`configio.build`; errors name `source`)."""
        return build(cls, data, source=source, what="train-sm")

    def replace(self, **changes: Any) -> SMConfig:
        """A copy with the given fields changed (None values are ignored)."""
        return replace_given(self, changes)


def load_config(path: str | Path | None, **overrides: Any) -> SMConfig:
    """Read a JSON config (missing fields take the defaults above; `_comment` is ignored; no file: the
    defaults), then apply the non-None overrides."""
    base = SMConfig.from_dict(read_config_file(path), source=f"config '{path}'") if path is not None else SMConfig()
    return base.replace(**overrides)
