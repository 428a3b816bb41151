"""A finished fine-tuning run (`masktax finetune`, `masktax train-sm`) applied to a loaded model.

A run dir's `final/` holds either a peft LoRA/DoRA adapter (`adapter_config.json`,
`adapter_model.safetensors`; a pickled `adapter_model.bin` is refused, as every pickle is) or, for
full fine-tuning, a complete checkpoint in the family's HF layout. `apply_finetune(lm, run_dir)`
puts either onto a loaded model (probes load fine-tuned models through it, without importing
training); `merge_finetune(run_dir, out)` writes a merged checkpoint that `masktax.models.load`
reads like any other.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt
from masktax.models.load import load
from masktax.models.loaded import LoadedModel

FINETUNE_CONFIG = "finetune_config.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def finetune_dir(run_dir: str | Path) -> Path:
    """The `final/` of a run dir, or the directory itself when it already holds the result."""
    root = Path(run_dir).expanduser()
    if not root.exists():
        raise MasktaxError(f"fine-tuning run dir '{run_dir}' does not exist")
    for cand in (root / "final", root):
        if (cand / ADAPTER_CONFIG).is_file() or (cand / FINETUNE_CONFIG).is_file():
            return cand
    raise MasktaxError(f"'{run_dir}' is not a fine-tuning run (no final/ with an adapter or model)")


def apply_finetune(lm: LoadedModel, run_dir: str | Path) -> LoadedModel:
    """The loaded model `lm` with the run's LoRA (merged in) or full fine-tuned weights.

    Changes `lm.model` in place (pass a copy to keep the base). The result is named
    "<base name>+<run dir name>"; its `extra` records `base_name` and `adapter_dir`.
    """
    path = finetune_dir(run_dir)
    if (path / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        check_adapter(path)
        try:
            with ckpt.quiet_transformers(), warnings.catch_warnings():
                # peft only warns when the adapter's tensors match none of the model's: it would run unadapted
                warnings.filterwarnings("error", message="Found missing adapter keys", category=UserWarning)
                model = PeftModel.from_pretrained(lm.model, str(path)).merge_and_unload()
        except (*ckpt.LOAD_ERRORS, UserWarning) as err:
            raise MasktaxError(f"the adapter in '{path}' does not fit model '{lm.name}': {ckpt.reason(err)}") from err
    else:
        model = lm.model
        ckpt.check_weights(path)  # a missing, pickled or unreadable file is said as such, not as a misfit
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


def check_adapter(path: Path) -> None:
    """Refuse an adapter dir peft would fail on or read through pickle: adapter_config.json must be
    a JSON object naming its peft type, the weights a readable adapter_model.safetensors."""
    config = ckpt.read_json_object(path / ADAPTER_CONFIG)
    if not isinstance(config.get("peft_type"), str):
        raise MasktaxError(f"'{path / ADAPTER_CONFIG}' does not name its peft_type; is it a peft adapter config?")
    weights = path / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickled = ckpt.pickle_files(path)
        if pickled:
            raise ckpt.refuse_pickle(pickled[0])
        raise MasktaxError(f"the adapter in '{path}' has no {ADAPTER_WEIGHTS}")
    with ckpt.open_safetensors(weights) as handle:
        handle.keys()


def merge_finetune(
    run_dir: str | Path, out: str | Path, *, device: str | None = "cpu", trust_remote_code: bool = False
) -> Path:
    """Write the base model with the run's weights merged in as a checkpoint dir loadable by `load`.

    The base model's own code runs only with `trust_remote_code` from the caller: a run dir is
    input like any other, so its recorded `trust_remote_code` is never consent. `out` must be new
    (or an empty directory); the checkpoint is written next to it and renamed into place when
    complete, so an interrupted merge leaves nothing at `out` that looks finished.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MasktaxError(f"'{out}' already exists{' and is not empty' if out.is_dir() else ''}; "
                           "merge into a new directory")
    path = finetune_dir(run_dir)
    cfg = ckpt.read_json_object(path / FINETUNE_CONFIG) if (path / FINETUNE_CONFIG).is_file() else {}
    base = cfg.get("model")
    if not base:
        raise MasktaxError(f"'{path}' does not record its base model ({FINETUNE_CONFIG} missing)")
    if not isinstance(base, str) or not (cfg.get("mask_token_id") is None or isinstance(cfg["mask_token_id"], int)):
        raise MasktaxError(f"'{path / FINETUNE_CONFIG}': 'model' should be a string and 'mask_token_id' an integer")
    partial = out.resolve().with_name(f".{out.resolve().name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if cfg.get("full"):
        ckpt.check_weights(path)
        shutil.copytree(path, partial)
    else:
        lm = load(base, device=device, dtype=torch.float32, trust_remote_code=trust_remote_code,
                  mask_token_id=cfg.get("mask_token_id"))
        merged = apply_finetune(lm, run_dir)
        save_model(merged.model, merged.tokenizer, partial)
    os.replace(partial, out)
    return out


def save_model(model: nn.Module, tokenizer, out: Path) -> None:
    """HF layout (native families write their published layout) plus the tokenizer files."""
    out.mkdir(parents=True, exist_ok=True)
    with ckpt.quiet_transformers():
        model.save_pretrained(out)
        if tokenizer is not None:
            tokenizer.save_pretrained(out)
