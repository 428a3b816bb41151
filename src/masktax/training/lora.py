"""LoRA / DoRA (through peft) for fine-tuning (`finetune`, `train_sm`), and loading / merging results.

[P1] fine-tunes with LoRA rank 64, alpha 128, dropout 0; the target modules are not stated. Ours
are every linear layer of every block (attention and MLP), per family:

    llada (native names): q_proj k_proj v_proj attn_out ff_proj up_proj ff_out (inside blocks
                          only: the top-level `ff_out` is LLaDA's output head and stays frozen)
    dream / Qwen2, Llama: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj

[P2] trains soft-masking with DoRA (`use_dora`: W = m * (W0 + B A) / ||W0 + B A||_c, a trained
magnitude m per output column) of r = 16 on q, k, v, o; `present_targets` keeps the names a model has.

A fine-tuning run dir's `final/` holds either a peft adapter (`adapter_config.json`,
`adapter_model.safetensors`) or, for `--full`, a complete checkpoint in the family's HF layout.
`apply_adapter(lm, run_dir)` puts either onto a loaded model; `merge(run_dir, out)` writes a
merged checkpoint that `masktax.models.load` reads like any other.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel

_LLADA_BLOCK = r".*\.blocks\.\d+\.({})"
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llada": ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"),
    "dream": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "ar": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}
FINETUNE_CONFIG = "finetune_config.json"


def peft_targets(family: str, targets: tuple[str, ...] | None) -> str | list[str]:
    """peft's `target_modules`: a regex restricted to LLaDA's blocks, else a list of name suffixes."""
    if targets is None:
        if family not in LORA_TARGETS:
            raise MasktaxError(f"no default LoRA targets for family '{family}'; pass --lora-targets")
        targets = LORA_TARGETS[family]
    if family == "llada":
        return _LLADA_BLOCK.format("|".join(targets))
    return list(targets)


def present_targets(model: nn.Module, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The names in `targets` that are module names of `model` (last dotted part); error if none is."""
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    kept = tuple(t for t in targets if t in present)
    if not kept:
        raise MasktaxError(f"none of the LoRA targets {list(targets)} is a module of this model")
    return kept


def add_lora(model: nn.Module, family: str, *, rank: int, alpha: float, dropout: float,
             targets: tuple[str, ...] | None, use_dora: bool = False) -> nn.Module:
    """Wrap `model` (in place) in a peft model with fresh LoRA (or DoRA) adapters; only they are trainable.

    Returns the `PeftModel`; `model` itself now holds the adapter layers, so it can keep being called.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, bias="none", use_dora=use_dora,
                        target_modules=peft_targets(family, targets))
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # peft: "Target modules ... not found in the base model"
        raise MasktaxError(f"LoRA targets do not match this model ({family}): {err}") from err


class TrainableState(nn.Module):
    """A view of a model's trainable parameters with the `state_dict` / `load_state_dict` that
    `loop_utils.save_checkpoint` / `load_checkpoint` use, so a LoRA checkpoint holds only the adapter."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {n: p.detach() for n, p in self._params.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):  # type: ignore[override]
        missing = [n for n in self._params if n not in state]
        unexpected = [n for n in state if n not in self._params]
        with torch.no_grad():
            for n, t in state.items():
                if n in self._params:
                    self._params[n].copy_(t)
        return nn.modules.module._IncompatibleKeys(missing, unexpected)


def final_dir(run_dir: str | Path) -> Path:
    """The `final/` of a run dir, or the directory itself when it already holds the result."""
    root = Path(run_dir).expanduser()
    if not root.exists():
        raise MasktaxError(f"fine-tuning run dir '{run_dir}' does not exist")
    for cand in (root / "final", root):
        if (cand / "adapter_config.json").is_file() or (cand / FINETUNE_CONFIG).is_file():
            return cand
    raise MasktaxError(f"'{run_dir}' is not a fine-tuning run (no final/ with an adapter or model)")


def apply_adapter(lm: LoadedModel, run_dir: str | Path) -> LoadedModel:
    """The loaded model `lm` with the run's LoRA (merged in) or full fine-tuned weights.

    Changes `lm.model` in place (pass a copy to keep the base). The result is named
    "<base name>+<run dir name>"; its `extra` records `base_name` and `adapter_dir`.
    """
    path = final_dir(run_dir)
    if (path / "adapter_config.json").is_file():
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(lm.model, str(path)).merge_and_unload()
        except (ValueError, KeyError, RuntimeError) as err:
            raise MasktaxError(f"the adapter in '{path}' does not fit model '{lm.name}': {err}") from err
    else:
        from masktax.models import checkpoint as ckpt

        model = lm.model
        try:
            ckpt.load_weights(model, path, device=lm.device, dtype=lm.dtype,
                              optional=tuple(getattr(model, "tied_names", tuple)()))
        except MasktaxError as err:
            raise MasktaxError(f"the fine-tuned weights in '{path}' do not fit model '{lm.name}': {err}") from err
        if hasattr(model, "tie_weights"):
            model.tie_weights()
    model.eval()
    extra = {**lm.extra, "base_name": lm.name, "adapter_dir": str(path)}
    return dataclasses.replace(lm, model=model, name=f"{lm.name}+{Path(run_dir).name}", extra=extra)


def merge(run_dir: str | Path, out: str | Path, *, device: str | None = "cpu") -> Path:
    """Write the base model with the run's weights merged in as a checkpoint dir loadable by `load`."""
    from masktax.models import load

    path = final_dir(run_dir)
    cfg = json.loads((path / FINETUNE_CONFIG).read_text()) if (path / FINETUNE_CONFIG).is_file() else {}
    base = cfg.get("model")
    if not base:
        raise MasktaxError(f"'{path}' does not record its base model ({FINETUNE_CONFIG} missing)")
    if cfg.get("full"):
        shutil.copytree(path, out, dirs_exist_ok=True)
        return Path(out)
    lm = load(base, device=device, dtype=torch.float32, trust_remote_code=bool(cfg.get("trust_remote_code")),
                   mask_token_id=cfg.get("mask_token_id"))
    merged = apply_adapter(lm, run_dir)
    out = Path(out)
    save_model(merged.model, merged.tokenizer, out)
    return out


def save_model(model: nn.Module, tokenizer, out: Path) -> None:
    """HF layout (native families write their published layout) plus the tokenizer files."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
