"""Helpers every masktax training loop shares: run dir, checkpoints, exact resume, metrics, schedule.

Checkpoint layout `step-XXXXXX/`: `model.safetensors` (fp32 state dict), `optimizer.pt`,
`state.json` (step, tokens, wall time, curriculum and data-generator state), `rng.pt` (torch/CUDA/
python RNG states). A checkpoint is written to a temporary name and renamed, so a crash never
leaves a half-written `step-*` directory.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from masktax.errors import MasktaxError


def lr_at(step: int, *, lr: float, warmup: int, schedule: str, max_steps: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then constant or cosine down to `min_ratio * lr` at `max_steps`."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    frac = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac)))


def prepare_run_dir(out: Path, config: dict[str, Any], *, free: tuple[str, ...] = ("max_steps", "init_from")) -> None:
    """Create `out` with config.json, or check that an existing run dir holds the same config.

    Fields in `free` may differ on resume (the run's length bound; the start-only `init_from`,
    whose path moves when a run is carried to another machine); config.json is then updated.
    """
    out.mkdir(parents=True, exist_ok=True)
    file = out / "config.json"
    if file.is_file():
        old = json.loads(file.read_text())
        a = {k: v for k, v in old.items() if k not in free}
        b = {k: v for k, v in json.loads(json.dumps(config)).items() if k not in free}
        if a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise MasktaxError(f"'{out}' holds a run of another config (differs in {', '.join(diff)}); use another --out")
    write_json(file, config)


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (temporary file then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def env_info(device: torch.device, seed: int) -> dict[str, Any]:
    """Package versions, git commit, device and seed (env.json)."""
    import transformers

    from masktax import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    info: dict[str, Any] = {
        "masktax": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "git_commit": commit,
        "device": str(device), "seed": seed, "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete `step-XXXXXX` checkpoints, oldest first."""
    return sorted(p for p in out.glob("step-[0-9]*") if p.is_dir() and (p / "state.json").is_file())


def latest_checkpoint(out: Path) -> Path | None:
    dirs = checkpoint_dirs(out)
    return dirs[-1] if dirs else None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    out: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], *, keep: int
) -> Path:
    """Write `step-XXXXXX/` atomically, then delete all but the newest `keep` checkpoints."""
    final = out / f"step-{step:06d}"
    tmp = out / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(_untie(tensors), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    write_json(tmp / "state.json", state)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage: clone tensors that alias an earlier one."""
    seen: set[int] = set()
    out = {}
    for k, v in tensors.items():
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> dict:
    """Restore model, optimizer (moments upcast to fp32 if packed smaller) and RNG; returns state.json."""
    weights = load_file(str(path / "model.safetensors"), device=str(device))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or [m for m in missing if m not in weights]:
        bad = (unexpected or missing)[0]
        raise MasktaxError(f"checkpoint '{path}' does not match the model (tensor '{bad}')")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    opt_file = path / "optimizer.pt"
    if opt_file.is_file():
        opt_state = torch.load(opt_file, map_location=device, weights_only=False)
        for s in opt_state["state"].values():
            for k, v in s.items():
                if torch.is_tensor(v) and v.is_floating_point() and k != "step":
                    s[k] = v.float()
        optimizer.load_state_dict(opt_state)
    rng_file = path / "rng.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((path / "state.json").read_text())


class MetricsLog:
    """Append-only metrics.csv with a fixed header; on resume, rows past `step` are dropped."""

    def __init__(self, path: Path, fields: Sequence[str], *, resume_step: int | None) -> None:
        self.path, self.fields = path, list(fields)
        rows: list[dict[str, str]] = []
        if resume_step is not None and path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            w.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow({k: _fmt(row.get(k)) for k in self.fields})


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def read_metrics(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
