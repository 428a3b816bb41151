"""The `model_args` of lm-eval's `--model masktax`, as one frozen, validated config.

    lm_eval run --model masktax --model_args model=embedded-mdlm,mc_num=32,extra_masks=10 --tasks ...

Every field below is one `key=value` of `--model_args`; an unknown key or a bad value is one
MasktaxError line. lm-eval itself adds `batch_size`, `max_batch_size` and `device`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from masktax.errors import MasktaxError
from masktax.samplers import BLOCK_SAMPLER, SAMPLERS

LM_EVAL_KEYS = ("batch_size", "max_batch_size", "device")  # what lm-eval passes besides model_args


@dataclass(frozen=True)
class ModelArgs:
    """What `--model masktax` accepts in `--model_args` (plus lm-eval's batch_size / device)."""

    model: str = ""  # card name (`masktax models`), embedded name or checkpoint directory (required)
    mc_num: int = 128  # Monte Carlo rows per loglikelihood request of an MDLM (LLaDA's default)
    extra_masks: int = 0  # masks appended after the continuation / added to the generation canvas [P1]
    seed: int = 0  # seeds the mask draws (per request) and the sampling noise
    greedy: bool = True  # compute an MDLM's is_greedy (costs up to L extra passes per L-token continuation)
    batch_size: int | str = 16  # rows per forward pass, or "auto" (from free memory / a CPU token budget)
    max_batch_size: int | None = None  # cap for "auto"
    device: str | None = None  # auto, cpu, cuda, cuda:1 (several processes: each its own accelerator device)
    dtype: str | None = None  # float32, bfloat16, float16 (default bf16 on CUDA, fp32 on CPU)
    trust_remote_code: bool = False  # allow the checkpoint's own code (never implied)
    mask_token_id: int | None = None  # for an MDLM whose tokenizer declares no mask token
    sampler: str = "semi_ar"  # generate_until: semi_ar (LLaDA), dream, threshold (Fast-dLLM) or block (block-causal)
    gen_length: int | None = None  # tokens to generate; None = the task's max_gen_toks (else 256)
    steps: int | None = None  # semi_ar / dream steps; None = one token per step
    steps_per_block: int | None = None  # block: steps per attention block; None = the block size
    block_length: int | None = None  # semi_ar / threshold block; None = one block over the whole canvas
    remasking: str = "low_confidence"  # semi_ar: low_confidence or random
    alg: str = "maskgit_plus"  # dream: maskgit_plus, topk_margin, entropy or origin
    threshold: float | None = None  # threshold (None: 0.9) / block (None: 0.95) sampler: commit positions this confident
    cfg_scale: float = 0.0  # semi_ar: classifier-free guidance (prompt masked for the unconditional pass)
    cfg: float = 0.0  # loglikelihood of an MDLM: LLaDA's guidance (its ARC-C, HellaSwag, PIQA runs use 0.5)
    soft_mask: bool = False  # soft-masking [P2] in generate_until (weights from soft_mask_from or defaults)
    soft_mask_from: str | None = None  # directory holding soft_mask.json (trained omegas)

    def __post_init__(self) -> None:
        if not str(self.model).strip():
            raise MasktaxError("model_args needs model=NAME (a card name, embedded name or checkpoint directory)")
        for name in ("mc_num",):
            if int(getattr(self, name)) < 1:
                raise MasktaxError(f"model_args {name} must be at least 1, got {getattr(self, name)}")
        if self.cfg < 0 or self.cfg_scale < 0:
            raise MasktaxError("model_args cfg and cfg_scale must be >= 0")
        if self.extra_masks < 0:
            raise MasktaxError(f"model_args extra_masks must be >= 0, got {self.extra_masks}")
        for name in ("gen_length", "steps", "steps_per_block", "block_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MasktaxError(f"model_args {name} must be at least 1, got {value}")
        if self.sampler not in SAMPLERS:
            raise MasktaxError(f"model_args sampler '{self.sampler}' is unknown; choose one of {', '.join(SAMPLERS)}")
        if self.sampler == BLOCK_SAMPLER and (self.steps is not None or self.block_length is not None):
            raise MasktaxError("model_args sampler=block decodes the model's own attention blocks: give "
                               "steps_per_block, not steps or block_length")
        if self.steps_per_block is not None and self.sampler != BLOCK_SAMPLER:
            raise MasktaxError(f"model_args steps_per_block is for sampler=block, not {self.sampler}")
        if isinstance(self.batch_size, str) and not self.batch_size.startswith("auto"):
            raise MasktaxError(f"batch_size must be a positive integer or 'auto', got '{self.batch_size}'")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise MasktaxError(f"batch_size must be a positive integer or 'auto', got {self.batch_size}")

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> ModelArgs:
        """Build from lm-eval's parsed `model_args` (values already int/float/bool/str); `None` values of
        lm-eval's own keys mean "not given"."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(k for k in kwargs if k not in known)
        if unknown:
            raise MasktaxError(f"unknown model_args {', '.join(unknown)}; valid: {', '.join(known)}")
        values = {}
        for key, value in kwargs.items():
            if value is None and key in LM_EVAL_KEYS:
                continue
            values[key] = _coerce(key, value, known[key])
        return cls(**values)

    def replace(self, **changes) -> ModelArgs:
        return dataclasses.replace(self, **changes)


def _coerce(key: str, value, f: dataclasses.Field):
    """lm-eval parses `a=1` to int, `a=True` to bool, `a=x` to str; check that against the field's type."""
    kind = str(f.type)
    if value is None:
        if "None" in kind:
            return None
        raise MasktaxError(f"model_args {key} needs a value")
    try:
        if kind.startswith("bool"):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError
        if kind.startswith("int | str"):  # batch_size: an integer, or "auto" / "auto:N"
            return int(value) if str(value).isdigit() else str(value)
        if kind.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise MasktaxError(f"model_args {key}={value!r} is not a valid {kind.split(' ')[0]}") from None
