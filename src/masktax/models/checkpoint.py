"""Reading and writing Hugging Face style checkpoint directories for the native families.

A checkpoint is `config.json` plus either `model.safetensors` or shards listed in
`model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {name: file}}`). Weights are
loaded shard by shard straight onto the target device and dtype, then assigned into a model built
on the meta device, so an 8B model never exists twice in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from masktax.errors import MasktaxError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


def read_config(path: str | Path) -> dict:
    """The parsed `config.json` of a checkpoint directory."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise MasktaxError(f"no {CONFIG_NAME} in '{path}'; is it a model checkpoint directory?")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise MasktaxError(f"'{file}' is not valid JSON ({err.msg} at line {err.lineno})") from err


def weight_files(path: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint, single file or sharded."""
    root = Path(path)
    if (root / WEIGHTS_NAME).is_file():
        return [root / WEIGHTS_NAME]
    if (root / INDEX_NAME).is_file():
        index = json.loads((root / INDEX_NAME).read_text())
        files = sorted(set(index.get("weight_map", {}).values()))
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise MasktaxError(f"checkpoint '{path}' lists shard '{missing[0]}' but the file is missing")
        return [root / f for f in files]
    raise MasktaxError(f"no {WEIGHTS_NAME} or {INDEX_NAME} in '{path}'")


def load_weights(
    model: nn.Module,
    path: str | Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    optional: tuple[str, ...] = (),
    ignored_suffixes: tuple[str, ...] = ("rotary_emb.inv_freq",),
) -> None:
    """Assign every tensor of the checkpoint to `model` (built on meta), casting floats to `dtype`.

    `optional`: parameter names the checkpoint may lack (tied output weights; the caller ties them).
    Raises MasktaxError naming the first missing or unexpected tensor or a shape mismatch.
    """
    expected = dict(model.named_parameters())
    loaded: set[str] = set()
    for file in weight_files(path):
        shard: dict[str, torch.Tensor] = {}
        with safe_open(str(file), framework="pt", device=str(device)) as f:
            for name in f.keys():
                if name.endswith(ignored_suffixes):
                    continue
                if name not in expected:
                    raise MasktaxError(f"checkpoint '{path}' has unexpected tensor '{name}' for this model")
                tensor = f.get_tensor(name)
                if tuple(tensor.shape) != tuple(expected[name].shape):
                    raise MasktaxError(
                        f"tensor '{name}' in '{path}' has shape {tuple(tensor.shape)}, "
                        f"config implies {tuple(expected[name].shape)}"
                    )
                shard[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
        model.load_state_dict(shard, strict=False, assign=True)
        loaded.update(shard)
    missing = [n for n in expected if n not in loaded and n not in optional]
    if missing:
        raise MasktaxError(f"checkpoint '{path}' lacks tensor '{missing[0]}' ({len(missing)} missing)")


def save_weights(
    tensors: dict[str, torch.Tensor], path: str | Path, *, max_shard_bytes: int | None = None
) -> None:
    """Write `tensors` as `model.safetensors`, or as shards plus an index past `max_shard_bytes`."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if max_shard_bytes is None or total <= max_shard_bytes:
        save_file(tensors, str(root / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(root / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")


def write_config(config: dict, path: str | Path) -> None:
    """Write `config.json` (sorted keys, like `transformers`)."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


DTYPE_NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16 -> "bfloat16"` (the `torch_dtype` field of config.json)."""
    return str(dtype).removeprefix("torch.")
