"""Pack a run dir into one tar.gz under a size limit (to carry runs between GPU sessions), and unpack.

The pack holds config.json, env.json, metrics.csv, final/ and the latest `step-NNNNNN/`. To fit
`max_bytes` it degrades in order, recording what it did in `PACK.json`:
1. everything as saved (exact resume);
2. optimizer moments stored in bf16 (resume upcasts; close, not bit-exact);
3. checkpoint weights in bf16 too;
4. no optimizer state (resume restarts AdamW's moments; logged in PACK.json).

    python -m masktax.training.pretrain.pack RUN_DIR OUT.tar.gz [--max-mb 15.5]
    python -m masktax.training.pretrain.pack --unpack OUT.tar.gz PARENT_DIR
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from masktax.errors import MasktaxError
from masktax.training.loop import latest_checkpoint

LEVELS = ("exact", "bf16_moments", "bf16_checkpoint", "no_optimizer")


def _bytes_of_optimizer(path: Path, bf16: bool) -> bytes:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if bf16:
        for s in state["state"].values():
            for k, v in s.items():
                if torch.is_tensor(v) and v.is_floating_point() and k != "step":
                    s[k] = v.to(torch.bfloat16)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _bytes_of_weights(path: Path, bf16: bool) -> bytes:
    tensors = load_file(str(path))
    if bf16:
        tensors = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
    return save(tensors, metadata={"format": "pt"})


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _write(run: Path, dest: Path, level: str) -> None:
    top = run.name
    ckpt = latest_checkpoint(run)
    with tarfile.open(dest, "w:gz") as tar:
        for name in ("config.json", "env.json", "metrics.csv"):
            if (run / name).is_file():
                tar.add(run / name, f"{top}/{name}")
        if (run / "final").is_dir():
            tar.add(run / "final", f"{top}/final")
        if ckpt is not None:
            base = f"{top}/{ckpt.name}"
            for f in sorted(ckpt.iterdir()):
                if f.name == "optimizer.pt":
                    if level != "no_optimizer":
                        _add(tar, f"{base}/{f.name}", _bytes_of_optimizer(f, level != "exact"))
                elif f.name == "model.safetensors":
                    _add(tar, f"{base}/{f.name}", _bytes_of_weights(f, level in ("bf16_checkpoint", "no_optimizer")))
                else:
                    tar.add(f, f"{base}/{f.name}")
        _add(tar, f"{top}/PACK.json", json.dumps({"level": level, "checkpoint": ckpt.name if ckpt else None}).encode())


def pack_run(run: str | Path, dest: str | Path, *, max_bytes: int = int(15.5 * 2**20)) -> str:
    """Write `dest` (tar.gz) from run dir `run`, degrading until it fits; returns the level used."""
    run, dest = Path(run), Path(dest)
    if not (run / "config.json").is_file():
        raise MasktaxError(f"'{run}' is not a run directory (no config.json)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for level in LEVELS:
        _write(run, dest, level)
        if dest.stat().st_size <= max_bytes:
            return level
    dest.unlink()
    raise MasktaxError(f"run '{run}' does not fit in {max_bytes} bytes even without optimizer state")


def unpack_run(archive: str | Path, parent: str | Path) -> Path:
    """Extract a pack under `parent`; returns the run dir."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        names = {m.name.split("/")[0] for m in tar.getmembers()}
        if len(names) != 1:
            raise MasktaxError(f"'{archive}' is not a masktax run pack")
        try:
            tar.extractall(parent, filter="data")
        except TypeError:  # Python without extraction filters
            tar.extractall(parent)  # noqa: S202 (our own packs)
    return parent / names.pop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unpack", action="store_true")
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--max-mb", type=float, default=15.5)
    a = ap.parse_args(argv)
    if a.unpack:
        print(unpack_run(a.src, a.dest))
    else:
        level = pack_run(a.src, a.dest, max_bytes=int(a.max_mb * 2**20))
        print(f"{a.dest}: {Path(a.dest).stat().st_size / 2**20:.1f} MB ({level})")


if __name__ == "__main__":
    main()
