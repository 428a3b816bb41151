"""`FinetuneConfig`: every choice of a mask-agnostic fine-tuning run, recorded in config.json.

Defaults are [P1]'s: alpha 0.1, p ~ U(0.2, 0.8), at most 600 trailing masks reached by a linear
curriculum over 5000 steps, context 1024, gradient clipping 1.0, weight decay 0, LoRA rank 64 /
alpha 128 / dropout 0, gradient accumulation 43 with batch 3, bf16 on GPU. beta and the learning
rate come from the paper's table (`PAPER_BETA_LR`) by variant and loss unless given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masktax.errors import MasktaxError
from masktax.training.configio import COMMENT, build, raise_first, read_config_file, replace_given, values

RESOLVED = ("resolved_beta", "resolved_lr")  # written to config.json by to_dict, read back and ignored
# [P1] table: (variant, CE+TV?) -> (beta, learning rate).
PAPER_BETA_LR: dict[tuple[str, bool], tuple[float, float]] = {
    ("base", False): (0.0, 1e-6),
    ("base", True): (1.0, 1e-5),
    ("instruct", False): (0.0, 1e-5),
    ("instruct", True): (10.0, 1e-6),
}


def paper_defaults(variant: str, *, beta: float | None, lr: float | None) -> tuple[float, float]:
    """beta and lr for `variant`: beta defaults to the CE+TV value; lr follows the table row of beta
    (CE-only when beta == 0) unless given."""
    if variant not in ("base", "instruct"):
        raise MasktaxError(f"--variant must be 'base' or 'instruct', got '{variant}'")
    b = PAPER_BETA_LR[(variant, True)][0] if beta is None else beta
    return b, (PAPER_BETA_LR[(variant, b != 0)][1] if lr is None else lr)


@dataclass(frozen=True)
class FinetuneConfig:
    """One run; `finetune.run(cfg, out)` trains it. Fields: model, data, loss, optimisation, runtime."""

    model: str  # name, card or checkpoint dir (masktax.models.load)
    data: str = "synthetic"  # .jsonl / .parquet file, a `datasets` name, or "synthetic"
    variant: str = "base"  # "base" | "instruct": picks beta / lr from the paper's table
    # data
    data_split: str = "train"  # split of a `datasets` name
    max_examples: int | None = None  # the first N rows (the paper uses a subset of OpenOrca)
    synthetic_n: int = 4000  # rows of the synthetic set when data == "synthetic"
    prompt_format: str = "auto"  # "auto" | "chat" | "plain" (instruct_data.py)
    max_context: int = 1024  # L: prompt + answer + trailing masks
    min_answer_tokens: int = 16  # truncate an answer only if this many tokens still fit
    # loss and views
    alpha: float = 0.1
    beta: float | None = None  # None: from the table (CE+TV); 0 = CE-only ablation
    p_range: tuple[float, float] = (0.2, 0.8)  # answer masking probability p ~ U(lo, hi)
    min_masks: int = 32  # curriculum start (not stated in the paper)
    max_masks: int = 600
    curriculum_steps: int = 5000  # optimiser steps to reach max_masks
    # adaptation
    full: bool = False  # full fine-tuning instead of LoRA (small models)
    lora_rank: int = 64
    lora_alpha: float = 128.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None  # None: training.finetune.lora.LORA_TARGETS by family
    # optimisation
    lr: float | None = None  # None: from the table
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    schedule: str = "constant"  # "constant" | "cosine" (after warm-up), floor min_lr_ratio
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 3  # examples per device per micro-batch (each runs as 2 rows: x1, x2)
    grad_accum: int = 43
    max_steps: int = 930  # optimiser steps ([P1]: 930; about 1.2k in the final version)
    # runtime
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA) | "bf16" | "no"
    dtype: str = "auto"  # weights: "auto" (bf16 on CUDA for LoRA, else fp32) | float32 | bfloat16
    gradient_checkpointing: bool = False
    save_every: int = 100  # checkpoint interval in optimiser steps (also at exit)
    keep_checkpoints: int = 2
    log_every: int = 1
    trust_remote_code: bool = False
    mask_token_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "p_range", tuple(self.p_range))
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.lora_targets is not None:
            object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        lo, hi = self.p_range
        checks = [
            (bool(self.model), "give a --model"),
            (self.variant in ("base", "instruct"), f"--variant must be 'base' or 'instruct', got '{self.variant}'"),
            (self.prompt_format in ("auto", "chat", "plain"), "--prompt-format must be auto, chat or plain"),
            (0.0 < lo <= hi <= 1.0, f"p_range must satisfy 0 < lo <= hi <= 1, got {self.p_range}"),
            (self.alpha > 0, "--alpha must be positive"),
            (self.beta is None or self.beta >= 0, "--beta must be non-negative"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (0 <= self.min_masks <= self.max_masks,
             f"--min-masks ({self.min_masks}) must be between 0 and --max-masks ({self.max_masks})"),
            (self.curriculum_steps >= 0, "curriculum_steps must be non-negative"),
            (self.max_context >= 8, "--max-context must be at least 8"),
            (self.min_answer_tokens >= 1, "min_answer_tokens must be at least 1"),
            (self.lora_rank >= 1 and self.lora_alpha > 0, "LoRA rank and alpha must be positive"),
            (0.0 <= self.lora_dropout < 1.0, "lora_dropout must be in [0, 1)"),
            (self.lora_targets is None or len(self.lora_targets) > 0, "--lora-targets is empty"),
            (self.weight_decay >= 0 and self.grad_clip >= 0, "weight_decay and grad_clip must be non-negative"),
            (self.schedule in ("constant", "cosine"), "schedule must be constant or cosine"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "--batch-size and --grad-accum must be at least 1"),
            (self.max_steps >= 1 and self.warmup_steps >= 0, "--max-steps must be at least 1"),
            (self.max_examples is None or self.max_examples >= 1, "--max-examples must be at least 1"),
            (self.synthetic_n >= 1, "synthetic_n must be at least 1"),
            (self.mixed_precision in ("auto", "bf16", "no"), "--mixed-precision must be auto, bf16 or no"),
            (self.dtype in ("auto", "float32", "bfloat16"), "--dtype must be auto, float32 or bfloat16"),
            (self.save_every >= 1 and self.log_every >= 1, "save_every and log_every must be at least 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be at least 1"),
        ]
        raise_first(checks)

    @property
    def resolved_beta_lr(self) -> tuple[float, float]:
        """(beta, lr) after the paper's table fills what was not given."""
        return paper_defaults(self.variant, beta=self.beta, lr=self.lr)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for k in ("p_range", "betas", "lora_targets"):
            out[k] = list(out[k]) if out[k] is not None else None
        out["resolved_beta"], out["resolved_lr"] = self.resolved_beta_lr
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "finetune config") -> FinetuneConfig:
        """The config in JSON object `data` (a config file, or a run's config.json with its resolved
        values), checked field by field (`configio.build`; errors name `source`)."""
        kw = {k: v for k, v in data.items() if k not in (*RESOLVED, COMMENT)}
        return build(cls, kw, source=source, what="finetune")

    def replace(self, **changes: Any) -> FinetuneConfig:
        """A copy with the given fields changed (None values are ignored)."""
        return replace_given(self, changes)


def load_config(path: str | Path | None, **overrides: Any) -> FinetuneConfig:
    """Read a JSON config (missing fields take the defaults), then apply non-None overrides.

    Without a file the overrides are the whole config, so they must name the model. A file that sets
    `trust_remote_code` is refused: consent is the command line's `--trust-remote-code` only.
    """
    data = read_config_file(path, consent_flag="--trust-remote-code") if path is not None else {}
    source = f"config '{path}'" if path is not None else "finetune flags"
    values(FinetuneConfig, {k: v for k, v in data.items() if k not in RESOLVED}, source=source,
           what="finetune")  # the file's own values, also those a flag overrides
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "model" not in data:
        raise MasktaxError(f"config '{path}' names no model; pass --model" if path is not None
                           else "give --model (or --config)")
    return FinetuneConfig.from_dict(data, source=source)
