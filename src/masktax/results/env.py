"""What a run ran on: package versions, git commit, device, dtype, seed and model provenance."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding `path` (default: this package), or None."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=where, capture_output=True, text=True, timeout=10, check=False,
    )
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def model_provenance(lm) -> dict:
    """Name, kind, mask id, dtype and where the weights came from (path / hub revision)."""
    config = getattr(lm.model, "config", None)
    info = {
        "kind": lm.kind,
        "mask_id": lm.mask_id,
        "shift": lm.shift,
        "max_length": lm.max_length,
        "dtype": str(lm.dtype).removeprefix("torch."),
        "device": str(lm.device),
        "source": getattr(config, "_name_or_path", None) or lm.extra.get("path") or lm.name,
        "revision": getattr(config, "_commit_hash", None) or lm.extra.get("revision"),
        "n_parameters": sum(p.numel() for p in lm.model.parameters()),
    }
    if lm.block_size:  # block-causal: an item's answer sits at (answer_pos - shift) % block_size
        info["block_size"] = lm.block_size
    return info


def environment(*, device: str, dtype: str, seed: int) -> dict:
    """Versions and machine facts for `env.json` (models are added by the caller)."""
    import torch
    import transformers

    import masktax

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "masktax": masktax.__version__,
        "git_commit": git_commit(),
        "device": device,
        "dtype": dtype,
        "seed": seed,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
    }
    return info
