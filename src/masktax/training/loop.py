"""Helpers every masktax training loop shares: checkpoints, exact resume, metrics, schedule, the run's
JSON files (written through `masktax.results`), and the step loop's control (`StepLoop`: signals,
time budget, progress bar, periodic and final checkpoints; `StopFlag`: SIGTERM and Ctrl-C as a
flag). The run dir itself (opening it, `final/`, the exit status) is `training.rundir`.

Checkpoint layout `step-NNNNNN/`: `model.safetensors` (fp32 state dict), `optimizer.pt`,
`state.json` (step, tokens, wall time, curriculum and data-generator state), `rng.pt` (torch/CUDA/
python RNG states). A checkpoint, and `final/`, is written to a temporary name and renamed, so a
crash never leaves a half-written `step-*` or `final/` directory; metrics.csv is rewritten whole
on resume and a torn last row (a kill mid-append) is dropped. A killed run (even SIGKILL) resumes
from its latest checkpoint and ends byte-identical to an uninterrupted one.

How a run ends (every recipe: pretrain, finetune, train-sm):
- it reaches `max_steps` (or, pretraining, its stop gate): `final/` (`rundir.write_final`) with
  `training_state.json` `"finished": true`; exit status 0 (`rundir.end_of_run`);
- `--max-minutes` is spent: a checkpoint, then `final/` marked `"finished": false,
  "stopped_by": "time budget"`; exit status 0 (the budget is what the user asked for), a line says
  how to continue;
- SIGTERM (`scripts/train_embedded_cpu.sh stop`): the step in progress finishes, a checkpoint, then
  `final/` of that step marked `"finished": false, "stopped_by": "SIGTERM"`; exit status 143 with
  one line naming the step and how to resume;
- Ctrl-C (SIGINT): the step in progress finishes and a checkpoint is written, NO `final/` (an
  existing one, e.g. of a finished shorter run, is left as it was); `run()` raises
  KeyboardInterrupt, which the CLI boundary (`cli/main.py`) turns into exit status 130 and one line
  saying how to resume. A second Ctrl-C stops at once, without that checkpoint (the periodic ones
  remain);
- an error: no checkpoint (the state may be half-updated), no `final/`; rerunning resumes from
  the latest periodic checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from masktax.errors import MasktaxError
from masktax.results.env import environment
from masktax.results.store import atomic_write_json, atomic_write_text


def lr_at(
    step: int, *, lr: float, warmup: int, schedule: str, max_steps: int, min_ratio: float,
    decay_start: int | None = None, decay_steps: int = 0,
) -> float:
    """Linear warm-up over `warmup` steps, then one of three shapes.

    "constant"; "cosine" down to `min_ratio * lr` at `max_steps`; "wsd" (warm-up, stable, decay):
    constant until `decay_start`, then cosine down to `min_ratio * lr` over `decay_steps`, then
    held there (the anneal that ends a run whose length was not known in advance).
    """
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    if schedule == "wsd":
        if decay_start is None or step < decay_start:
            return lr
        frac = min(1.0, (step - decay_start) / max(1, decay_steps))
        return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac)))
    frac = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac)))


RUN_LENGTH_FIELDS = ("max_steps", "init_from", "stop_gate", "stop_patience", "suite_items", "stop_on")


def write_json(path: Path, data: Any) -> None:
    """A training run's JSON file (config, state, env): keys sorted, a diverged run's NaN kept."""
    atomic_write_json(path, data, sort_keys=True, allow_nan=True)


def write_env(out: Path, device: torch.device, *, seed: int, dtype: str, **extra: Any) -> None:
    """env.json: `masktax.results.env.environment`, the GPU's name on CUDA, and `extra`."""
    info = environment(device=str(device), dtype=dtype, seed=seed)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    write_json(out / "env.json", info | extra)


def check_budget(max_minutes: float | None) -> None:
    """A run's wall-clock budget (`--max-minutes`) must be positive when given."""
    if max_minutes is not None and max_minutes <= 0:
        raise MasktaxError("--max-minutes must be positive")


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete `step-NNNNNN` checkpoints, oldest first."""
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
    """Write `step-NNNNNN/` atomically, then delete all but the newest `keep` checkpoints."""
    final = out / f"step-{step:06d}"
    tmp = out / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(_untie(tensors), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        write_json(tmp / "state.json", state)
        if final.exists():  # the same step saved again: move the old one aside, never half-delete it
            shutil.rmtree(out / f".old-{final.name}", ignore_errors=True)
            os.replace(final, out / f".old-{final.name}")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_checkpoints(out, keep=keep)
    return final


def prune_checkpoints(out: Path, *, keep: int) -> None:
    """Delete every `step-NNNNNN` directory but the newest `keep` complete checkpoints.

    A directory is first renamed out of the `step-*` namespace, then deleted, so a kill mid-deletion
    leaves a hidden `.old-step-*` that the next prune removes, never a half-deleted checkpoint.
    Directories a kill left behind earlier (no state.json, or a `.old-` leftover) go too.
    """
    kept = set(checkpoint_dirs(out)[-keep:])
    for old in sorted(out.glob("step-[0-9]*")):
        if old.is_dir() and old not in kept:
            trash = out / f".old-{old.name}"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(old, trash)
    for trash in out.glob(".old-step-*"):
        shutil.rmtree(trash, ignore_errors=True)


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
        opt_state = torch.load(opt_file, map_location=device, weights_only=True)
        for s in opt_state["state"].values():
            for k, v in s.items():
                if torch.is_tensor(v) and v.is_floating_point() and k != "step":
                    s[k] = v.float()
        optimizer.load_state_dict(opt_state)
    rng_file = path / "rng.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=True))
    return json.loads((path / "state.json").read_text())


class MetricsLog:
    """Append-only metrics.csv with a fixed header; on resume, rows past `step` are dropped.

    On opening the file is rewritten whole (atomically) from its complete lines: a row torn by a
    kill mid-append is dropped with the rows past the checkpoint, never kept half.
    """

    def __init__(self, path: Path, fields: Sequence[str], *, resume_step: int | None) -> None:
        self.path, self.fields = path, list(fields)
        rows: list[dict[str, str]] = []
        if resume_step is not None and path.is_file():
            data = path.read_bytes()
            complete = data[: data.rfind(b"\n") + 1].decode("utf-8")
            rows = [r for r in csv.DictReader(io.StringIO(complete, newline="")) if int(r["step"]) <= resume_step]
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=self.fields)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(path, text.getvalue())

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


STOPS = (None, "time budget", "SIGTERM", "SIGINT")  # why a loop stopped before max_steps, weakest first


class StopFlag:
    """Turns SIGTERM and a first Ctrl-C (SIGINT) into `signal` (the signal's name) so the loop can
    finish its step, checkpoint and stop; a second Ctrl-C raises KeyboardInterrupt at once. The
    previous handlers are restored on exit; a no-op off the main thread."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.old: dict[int, Any] = {}

    @property
    def flag(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # signal handlers can be set in the main thread only
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and self.signal is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signal = self.signal or signal.Signals(signum).name

    def __exit__(self, *_: object) -> None:
        for sig, old in self.old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.old = {}


class StepLoop:
    """The control of a training loop: when to stop, the progress bar, and the checkpoints.

        with StepLoop(out, step=step, max_steps=n, save_every=k, save=save) as loop:
            while loop.running(step):
                ...one optimiser step...; step += 1
                loop.tick(step, loss=f"{loss:.3f}")
        loop.raise_if_interrupted()
        state = {...} | loop.outcome()

    `running(step)` is False at `max_steps`, after SIGTERM or a first Ctrl-C, or once `max_minutes`
    of this invocation are spent (checked before each step; `stopped_by` says which). Processes of
    one run decide together: `agree(code)` (multi-process loops) returns the largest stop code of
    all processes, so all stop at the same step. `tick` advances the bar and calls `save(step)`
    every `save_every` steps. Leaving the block normally closes the bar and `writer` (a TensorBoard
    writer, or None) and, unless the last step was just saved, `save(step)` writes the checkpoint
    to resume from (signals are still caught meanwhile). Leaving it by an exception saves nothing:
    the step in progress may have changed the weights but not the step count.
    """

    def __init__(
        self, out: Path, *, step: int, max_steps: int, save_every: int, save: Callable[[int], None],
        max_minutes: float | None = None, progress: bool = True, writer: Any = None,
        agree: Callable[[int], int] | None = None,
    ) -> None:
        from tqdm import tqdm

        self.out, self.step, self.max_steps, self.save_every, self.save = out, step, max_steps, save_every, save
        self.last_saved, self.writer, self.agree = step, writer, agree
        self.budget = None if max_minutes is None else max_minutes * 60.0
        self.start = time.monotonic()
        self.stop = StopFlag()
        self.stopped_by: str | None = None
        self.bar = tqdm(total=max_steps, initial=step, disable=not progress, file=sys.stderr, mininterval=2.0)

    def seconds(self) -> float:
        """Wall-clock seconds since this invocation's loop was set up."""
        return time.monotonic() - self.start

    def running(self, step: int) -> bool:
        self.step = step
        if step >= self.max_steps:
            return False
        spent = self.budget is not None and self.seconds() >= self.budget
        code = STOPS.index(self.stop.signal if self.stop.flag else "time budget" if spent else None)
        if self.agree is not None:
            code = self.agree(code)
        self.stopped_by = STOPS[code]
        return self.stopped_by is None

    def tick(self, step: int, **postfix: Any) -> None:
        """After optimiser step `step` (1-based count): bar, postfix, periodic checkpoint."""
        self.step = step
        self.bar.update(1)
        if postfix:
            self.bar.set_postfix(**postfix)
        if step % self.save_every == 0:
            self.save(step)
            self.last_saved = step

    def raise_if_interrupted(self) -> None:
        """After the block: KeyboardInterrupt when Ctrl-C stopped the loop (or came during its last
        checkpoint), so that no final/ is written for an interrupted run."""
        if self.stopped_by == "SIGINT" or self.stop.signal == "SIGINT":
            raise KeyboardInterrupt

    def outcome(self, *, done: bool = False) -> dict[str, Any]:
        """`finished` (max_steps reached, or `done`: the recipe's own stop rule), `stopped_by` (None,
        "time budget" or "SIGTERM") and `max_steps`, for the run's final state."""
        finished = done or self.step >= self.max_steps
        return {"finished": finished, "stopped_by": None if finished else self.stopped_by,
                "max_steps": self.max_steps}

    def __enter__(self) -> StepLoop:
        self.stop.__enter__()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.bar.close()
            if self.writer is not None:
                self.writer.close()
            if exc_type is None and (self.step != self.last_saved or latest_checkpoint(self.out) is None):
                self.save(self.step)
        finally:
            self.stop.__exit__()


def open_tensorboard(path: Path, *, purge_step: int | None = None, say_if_missing: bool = False) -> Any:
    """A TensorBoard `SummaryWriter` on `path`, or None when tensorboard is not installed (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if say_if_missing:
            print("masktax: tensorboard is not installed; metrics go to metrics.csv only", file=sys.stderr)
        return None
    return SummaryWriter(str(path), purge_step=purge_step or None)
