"""`resolve_device`: the one place a device name ("auto", "cpu", "cuda", "cuda:N", "mps") becomes a
`torch.device` that exists on this machine.

Every model load and training run resolves its device here first (`masktax.models.load` re-exports
it), so a GPU that is not there is one line (`device 'cuda' requested but CUDA is not available`)
instead of torch's failure deep inside loading (safetensors' `pin_memory=True requires a CUDA ...`,
`invalid device ordinal`).
"""

from __future__ import annotations

import torch

from masktax.errors import MasktaxError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None or "auto": CUDA when available, else CPU. A device this machine lacks is an error:
    CUDA without CUDA, `cuda:N` past the visible GPUs, MPS without MPS, any other device type."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise MasktaxError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)") from err
    if dev.type not in DEVICE_TYPES:
        raise MasktaxError(f"unsupported device '{device}' (use auto, cpu, cuda or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise MasktaxError(f"device '{device}' requested but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise MasktaxError(
                f"device '{device}' requested but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise MasktaxError(f"device '{device}' requested but MPS is not available on this machine")
    return dev
