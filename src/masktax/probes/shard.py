"""Sharded probe runs: the processes of `torchrun` / `accelerate launch`, and which items each scores.

    torchrun --nproc-per-node 2 -m masktax.cli.main probe masks --model GSAI-ML/LLaDA-8B-Base --out runs/masks
    accelerate launch --num-processes 2 -m masktax.cli.main probe masks --model GSAI-ML/LLaDA-8B-Base --out runs/masks

Both launchers set RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR / MASTER_PORT); with
WORLD_SIZE > 1, `run_probe` splits the run (docs/distributed.md). torch.distributed carries only
barriers and one-line errors (gloo, also on GPUs: no tensor travels between processes); the records
go through files (masktax.results.shards).

Ownership. Every process runs the probe's same loops over the same plan; `Shard.owns(key)` tells a
process whether an item is its own, and a process treats every other item as finished. Items are
owned in groups that the engine batches together, so no batch is computed twice and each batch is
computed whole, exactly as in one process (the batch plan depends only on the items): the numbers
are identical. Ownership is a function of the key and the plan alone, never of what is finished, so
every process agrees on it whatever each has done. The groups:

- `score_cells` (every single-pass probe) declares its chunks with `plan`: chunk j, whose middle
  is item m of the model's n, goes to process floor(m * W / n): contiguous stretches of the
  one-process order, so concatenating the processes' records restores that order exactly.
- a probe with its own loop (unmask, attribution, uncertainty, format) owns items by dataset:
  the d-th of the run's D datasets goes to process floor(d * W / D) (at most D processes busy).
  unmask batches a cell's items over all datasets (in dataset order): a batch that straddles two
  processes' datasets is computed by both, each keeping its own items (same numbers: every item
  draws from its own generator).
  Concatenation restores the one-process order where the loop runs dataset by dataset
  (attribution, format); where it runs cell by cell over the datasets (unmask, uncertainty) the
  merged records are the same records in another order (summary and report are equal).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from masktax.errors import MasktaxError

# A process that finishes its share early waits at a barrier for the others; torchrun and accelerate
# end every process when one fails, so the wait is long but never forever.
BARRIER_TIMEOUT = timedelta(days=7)


@dataclass
class Shard:
    """Which items process `rank` of `world` scores (see the module docstring)."""

    rank: int
    world: int
    datasets: tuple[str, ...]  # the run's datasets, in order
    _planned: dict[str, int] = field(default_factory=dict)  # key -> process, from `plan`

    def plan(self, model: str, groups: list[list[str]]) -> None:
        """Declare a model's whole plan: groups of item keys batched together, in plan order."""
        n, start = sum(len(g) for g in groups), 0
        for keys in groups:
            middle2 = 2 * start + len(keys)  # twice the index of the group's middle item
            self._planned.update(dict.fromkeys(keys, min(self.world - 1, middle2 * self.world // (2 * n))))
            start += len(keys)

    def owns(self, key: str) -> bool:
        """Whether this process scores the item `key` (an item_key)."""
        owner = self._planned.get(key)
        if owner is None:
            dataset = json.loads(key)[3]
            owner = self.datasets.index(dataset) * self.world // len(self.datasets) if dataset in self.datasets else 0
        return owner == self.rank


@dataclass(frozen=True)
class Processes:
    """This process's place among the launcher's: rank, world size, rank on this node."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """--device for this process: "auto" / "cuda" -> this process's own GPU (when there are GPUs)."""
        import torch

        if device not in ("auto", "cuda") or not torch.cuda.is_available():
            return device
        count = torch.cuda.device_count()
        if count == 1:
            index = 0  # a process that sees one GPU (srun --gpus-per-task=1, CUDA_VISIBLE_DEVICES) uses it
        elif self.local_rank < count:
            index = self.local_rank
        else:
            raise MasktaxError(f"process {self.local_rank} of this node has no GPU of its own ({count} visible); "
                               f"start at most {count} processes per node or pass --device cpu")
        torch.cuda.set_device(index)
        return f"cuda:{index}"

    def barrier(self) -> None:
        """Wait for every process; a process that ended early is one MasktaxError."""
        import torch.distributed as dist

        try:
            dist.barrier()
        except RuntimeError as err:  # gloo: the connection of a process that exited closed
            raise MasktaxError(f"another process of this sharded run ended early ({str(err).splitlines()[0]}); "
                               "rerun the same command to resume") from None

    def first(self, step: Callable[[], None]) -> None:
        """Run `step()` on process 0 only, then let the others on; its MasktaxError is raised by every process."""
        import torch.distributed as dist

        message = [None]
        if self.main:
            try:
                step()
            except MasktaxError as err:
                message = [str(err)]
        try:
            dist.broadcast_object_list(message, src=0)
        except RuntimeError as err:
            raise MasktaxError(f"process 0 of this sharded run ended early ({str(err).splitlines()[0]}); "
                               "rerun the same command to resume") from None
        if message[0] is not None:
            raise MasktaxError(message[0])


def processes() -> Processes | None:
    """The launcher's processes (RANK / WORLD_SIZE / LOCAL_RANK), their process group started (gloo);
    None in a one-process run."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    if "RANK" not in os.environ or not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
        raise MasktaxError(f"WORLD_SIZE is {world} but RANK, MASTER_ADDR or MASTER_PORT is not set; "
                           "start a sharded run with torchrun or accelerate launch")
    rank = int(os.environ["RANK"])
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=BARRIER_TIMEOUT)
    return Processes(rank=rank, world=world, local_rank=int(os.environ.get("LOCAL_RANK", rank)))


def is_main_process() -> bool:
    """False only in a process of a sharded run other than process 0 (which alone prints)."""
    return int(os.environ.get("RANK", "0") or 0) == 0 or int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1
