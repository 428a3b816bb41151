"""Reading and writing Hugging Face style checkpoint directories, and refusing damaged ones.

A checkpoint is `config.json` plus either `model.safetensors` or shards listed in
`model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {name: file}}`). Weights are
loaded shard by shard straight onto the target device and dtype, then assigned into a model built
on the meta device, so an 8B model never exists twice in memory.

Weights are read only from safetensors: a pickle file (`pytorch_model.bin`, `adapter_model.bin`)
can run code when it is unpickled, so a checkpoint that has nothing else is refused with how to
convert it. Every file is checked where it is read, and a damaged one (JSON that is not an object,
a truncated or foreign safetensors file, a config field of the wrong type) is a one-line
MasktaxError naming the file. `quiet_transformers()` keeps transformers' own progress bars and
info logging off the terminal while masktax loads through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from masktax.errors import MasktaxError
from masktax.results.store import parse_json_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# What a checkpoint that does not fit its loader raises inside transformers / peft / safetensors
# (a config field of the wrong type, a tensor of the wrong shape, a header that does not parse).
LOAD_ERRORS: tuple[type[Exception], ...] = (
    OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, SafetensorError,
)
try:  # transformers >= 5 validates config fields with huggingface_hub's strict dataclasses
    from huggingface_hub.errors import StrictDataclassError
except ImportError:  # an older huggingface_hub: its config errors are among the above
    pass
else:
    LOAD_ERRORS += (StrictDataclassError,)
# config.json fields masktax itself reads, and the JSON types each may have.
_INT_FIELDS = ("mask_token_id", "max_sequence_length", "max_position_embeddings", "n_positions", "n_ctx")
_INT_OR_LIST_FIELDS = ("eos_token_id", "pad_token_id")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}


def reason(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line: whitespace collapsed, cut at `limit` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):  # str(KeyError) is only the quoted key
        text = f"missing key {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json_object(file: str | Path) -> dict[str, Any]:
    """The JSON object in `file`; not UTF-8, not JSON or not an object is a MasktaxError naming it."""
    file = Path(file)
    data = parse_json_file(file, f"'{file}'")
    if not isinstance(data, dict):
        raise MasktaxError(f"'{file}' holds {_JSON_TYPES.get(type(data), 'a value')}, not a JSON object")
    return data


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed `config.json` of a checkpoint directory, the fields masktax reads type-checked."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise MasktaxError(f"no {CONFIG_NAME} in '{path}'; is it a model checkpoint directory?")
    config = read_json_object(file)
    check_config(config, file)
    return config


def check_config(config: dict[str, Any], file: Path) -> None:
    """Raise a MasktaxError naming `file` when a field masktax reads has the wrong JSON type."""

    def bad(key: str, want: str) -> MasktaxError:
        got = _JSON_TYPES.get(type(config[key]), "a value")
        return MasktaxError(f"'{file}': field '{key}' should be {want}, got {got} ({config[key]!r:.60})")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if config.get("model_type") is not None and not isinstance(config["model_type"], str):
        raise bad("model_type", "a string")
    archs = config.get("architectures")
    if archs is not None and not (isinstance(archs, list) and all(isinstance(a, str) for a in archs)):
        raise bad("architectures", "a list of class names")
    for key in ("auto_map", "text_config"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise bad(key, "an object")
    for key in _INT_FIELDS:
        if config.get(key) is not None and not (is_int(config[key]) and config[key] >= 0):
            raise bad(key, "a non-negative integer")
    for key in _INT_OR_LIST_FIELDS:
        value = config.get(key)
        if value is not None and not (is_int(value) or (isinstance(value, list) and all(map(is_int, value)))):
            raise bad(key, "an integer or a list of integers")


def pickle_files(path: str | Path) -> list[Path]:
    """Weight files in `path` that only a pickle loader reads (`pytorch_model.bin`, `*.pt`, ...), model
    weights first (before e.g. `training_args.bin`)."""
    root = Path(path)
    if not root.is_dir():
        return []
    found = [f for f in root.iterdir() if f.is_file() and f.name.endswith(PICKLE_SUFFIXES)]
    return sorted(found, key=lambda f: (not f.name.startswith(("pytorch_model", "adapter_model", "model")), f.name))


def refuse_pickle(file: Path) -> MasktaxError:
    """The error for a checkpoint whose weights exist only as a pickle file."""
    return MasktaxError(
        f"'{file}' is a pickle file; masktax loads weights only from safetensors, since unpickling can run "
        "code. Convert it on a machine where you trust the file and its code (load it with transformers or "
        "peft, then save_pretrained(DIR, safe_serialization=True)) and pass DIR"
    )


def weight_files(path: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint, single file or sharded (shards must sit in `path`)."""
    root = Path(path)
    if (root / WEIGHTS_NAME).is_file():
        return [root / WEIGHTS_NAME]
    if (root / INDEX_NAME).is_file():
        index = read_json_object(root / INDEX_NAME)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(f, str) for f in weight_map.values()):
            raise MasktaxError(f"'{root / INDEX_NAME}' has no weight_map of tensor name -> file name")
        files = sorted(set(weight_map.values()))
        outside = [f for f in files if Path(f).name != f or f in ("", ".", "..")]
        if outside:
            raise MasktaxError(f"'{root / INDEX_NAME}' names shard '{outside[0]}' outside the checkpoint directory")
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise MasktaxError(f"checkpoint '{path}' lists shard '{missing[0]}' but the file is missing")
        return [root / f for f in files]
    pickled = pickle_files(root)
    if pickled:
        raise refuse_pickle(pickled[0])
    raise MasktaxError(f"no {WEIGHTS_NAME} or {INDEX_NAME} in '{path}'")


def unreadable(file: Path, err: BaseException) -> MasktaxError:
    """The error for a weights file that safetensors cannot read (empty, truncated, not safetensors)."""
    return MasktaxError(f"'{file}' is not a readable safetensors file ({reason(err)})")


@contextmanager
def open_safetensors(file: Path, device: str | torch.device = "cpu") -> Iterator[Any]:
    """`safe_open` on `file`; a header or tensor that does not read is a MasktaxError naming the file."""
    try:
        with safe_open(str(file), framework="pt", device=str(device)) as handle:
            yield handle
    except (SafetensorError, OSError) as err:
        raise unreadable(file, err) from err


def check_weights(path: str | Path) -> list[Path]:
    """The checkpoint's safetensors files after reading each header (what a loader outside masktax,
    transformers or peft, is then given); no tensor is read."""
    files = weight_files(path)
    for file in files:
        with open_safetensors(file) as handle:
            handle.keys()
    return files


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Inside: no transformers / huggingface_hub progress bars ("Loading weights", "Writing model
    shards") and only transformers' errors logged; both restored on exit. masktax reports any
    problem itself (a MasktaxError), so the library's bars and notices would only clutter it."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    level, bars, hub_off = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()  # also turns the hub's bars back on ...
        if hub_off:
            disable_progress_bars()  # ... unless they were off before


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
        with open_safetensors(file, device) as f:
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


def hf_from_pretrained(cls: Any, path: str | Path, what: str, **kwargs: Any) -> nn.Module:
    """`cls.from_pretrained(path, **kwargs)` (a transformers Auto or model class) as masktax loads
    every checkpoint: from safetensors only (headers read first), quietly, and strictly: a tensor
    the model needs but the checkpoint lacks, or one of another shape, is an error rather than
    transformers' random re-initialisation. `what` names the model kind in errors ("an ar model")."""
    check_weights(path)
    try:
        with quiet_transformers():
            model, info = cls.from_pretrained(str(path), use_safetensors=True, output_loading_info=True,
                                              ignore_mismatched_sizes=True, **kwargs)
    except LOAD_ERRORS as err:
        raise MasktaxError(f"could not load '{path}' as {what}: {reason(err)}") from err
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda m: m[0])
    if mismatched:
        name, got, want = mismatched[0]
        raise MasktaxError(f"tensor '{name}' in '{path}' has shape {tuple(got)}, config implies {tuple(want)}")
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise MasktaxError(f"checkpoint '{path}' lacks tensor '{missing[0]}' ({len(missing)} missing)")
    return model
