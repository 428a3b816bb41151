"""The models of a probe run: loading each (with its fine-tuning run applied), its prompt format,
its env.json entry, and the progress bar over its items.

A model given with `--finetune RUN_DIR` is loaded with `masktax.models.load`, then the run's LoRA
(merged) or full fine-tuned weights are applied (`masktax.models.finetuned.apply_finetune`); its
results are stored under the name that gives it, "<model>+<run dir name>", so one run can hold the
base model and its fine-tunes side by side (`--model m --model m --finetune none --finetune RUN`).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
from collections.abc import Iterator
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.models.cards import card_for
from masktax.models.finetuned import apply_finetune
from masktax.models.load import auto_format, declared_eos_ids, load
from masktax.models.loaded import LoadedModel
from masktax.results.env import environment, model_provenance
from masktax.results.store import ENV, RunStore, atomic_write_json, read_json


def load_model(name: str, cfg, finetune_dir: str | None = None) -> LoadedModel:
    """Load model `name` with cfg's device / dtype / loading flags (a `RunConfig`), then apply
    the fine-tuning run `finetune_dir` if given."""
    lm = load(
        name,
        device=None if cfg.device == "auto" else cfg.device,
        dtype=None if cfg.dtype == "auto" else cfg.dtype,
        trust_remote_code=cfg.trust_remote_code,
        mask_token_id=cfg.mask_token_id,
    )
    return lm if finetune_dir is None else apply_finetune(lm, finetune_dir)


def each_model(cfg, loaded: dict[str, LoadedModel] | None = None) -> Iterator[tuple[str, LoadedModel]]:
    """(results name, model) per model of cfg (a `RunConfig`), in order, its `--finetune` applied.

    `loaded` holds already-loaded models by name (library use, tests): used as they are, or on a
    deep copy when a fine-tuning run is applied (the caller's model stays the base). Other models
    are loaded one at a time and released after use. Two models whose results names collide are an
    error.
    """
    seen: set[str] = set()
    for name, finetune_dir in zip(cfg.models, cfg.finetune_dirs(), strict=True):
        given = loaded is not None and name in loaded
        if given and finetune_dir is not None:
            base = loaded[name]  # type: ignore[index]
            lm = apply_finetune(dataclasses.replace(base, model=copy.deepcopy(base.model)), finetune_dir)
        elif given:
            lm = loaded[name]  # type: ignore[index]
        else:
            lm = load_model(name, cfg, finetune_dir)
        result_name = name if finetune_dir is None else lm.name
        if result_name in seen:
            raise MasktaxError(f"two models would be stored as '{result_name}'; give the fine-tuning run dirs distinct names")
        seen.add(result_name)
        yield result_name, lm
        if not given or finetune_dir is not None:
            del lm
            gc.collect()


def resolve_format(fmt: str, name: str, lm: LoadedModel) -> str:
    """"auto" -> "chat" or "base": the model card's choice (for a fine-tuned model, its base's), else
    the checkpoint's own, from its chat template and end-of-sequence tokens (`masktax.models.load.
    auto_format`, whose reason `record_model` writes to env.json). "base" / "chat" are returned as given."""
    if fmt != "auto":
        return fmt
    base = lm.extra.get("base_name")
    for candidate in (name, lm.name, base):
        card = card_for(candidate) if candidate else None
        if card is not None:
            return "chat" if card.chat else "base"
    if lm.tokenizer is None:
        return "base"
    config_eos = getattr(getattr(lm.model, "config", None), "eos_token_id", None)
    chosen, lm.extra["format_reason"] = auto_format(lm.tokenizer, declared_eos_ids(config_eos, lm.extra.get("path")))
    return chosen


def finetune_fields(lm: LoadedModel) -> dict:
    """The env.json fields of a fine-tuned model: its base and the applied run dir (empty otherwise)."""
    keys = ("base_name", "adapter_dir")
    return {k: lm.extra[k] for k in keys if k in lm.extra}


def write_env(store: RunStore, cfg, *, plan: int | None = None, model: tuple[str, dict] | None = None) -> None:
    """Rewrite env.json: this machine's facts, the number of models this command plans to score
    (`plan`, kept from before when None) and the models recorded so far (plus `model`)."""
    path = store.root / ENV
    old = read_json(path) if path.exists() else {}
    env = environment(device=cfg.device, dtype=cfg.dtype, seed=cfg.seed)
    env["planned_model_count"] = plan if plan is not None else old.get("planned_model_count")
    env["models"] = {**old.get("models", {}), **dict([model] if model else [])}
    atomic_write_json(path, env)


def record_model(store: RunStore, cfg, name: str, lm: LoadedModel, info: dict) -> None:
    """Add `name` to config.json, and its provenance (plus `info`, which holds the model's
    "expected_items") to env.json's models."""
    store.add_model(name)
    why = {"format_reason": lm.extra["format_reason"]} if cfg.format == "auto" and lm.extra.get("format_reason") else {}
    write_env(store, cfg, model=(name, {**model_provenance(lm), **finetune_fields(lm), **why, **info}))


def item_bar(progress: bool, what: str, name: str, total: int):
    """A tqdm bar over a model's items (disabled without progress or with nothing to do); use `with`."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{what} {Path(name).name}", unit="item", disable=not (progress and total))
