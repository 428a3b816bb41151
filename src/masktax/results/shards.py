"""The records of a sharded run (docs/distributed.md): one file per process, merged by process 0.

A run split over W processes keeps one run dir. Process 0 alone writes config.json, env.json and,
at the end, items.jsonl and the outputs; every process r appends its own records to

    shards/rank-0000r-of-0000W.jsonl

exactly as a one-process run appends to items.jsonl (one batch at a time, flushed and fsynced; a
torn last line is dropped on reopen), so each shard resumes by itself. Each process owns contiguous
stretches of the run's plan (masktax.probes.shard); `merge_shards` appends, model by model, process
0's records, then process 1's, ... to items.jsonl (the one-process order wherever the probe's loop
visits its groups in that order: docs/distributed.md says which) and deletes the shard files. Unmerged shards of another number of
processes are refused (`refuse_other_worlds`): which process owns which item depends on W.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.results.store import SHARDS, RunStore, item_key, read_config, read_records, repair_items

MERGE_CHUNK = 1000  # records appended per write while merging
_NAME = re.compile(r"rank-(\d+)-of-(\d+)\.jsonl")


def shard_file(root: str | os.PathLike, rank: int, world: int) -> Path:
    """Process `rank`'s records file in a run split over `world` processes."""
    return Path(root) / SHARDS / f"rank-{rank:05d}-of-{world:05d}.jsonl"


def shard_worlds(root: str | os.PathLike) -> set[int]:
    """The numbers of processes of the unmerged shard files in a run dir (empty when none)."""
    found = (_NAME.fullmatch(p.name) for p in (Path(root) / SHARDS).glob("*.jsonl"))
    return {int(m.group(2)) for m in found if m}


def refuse_other_worlds(root: str | os.PathLike, world: int) -> None:
    """MasktaxError when `root` holds unmerged shards of a run on another number of processes."""
    others = sorted(shard_worlds(root) - {world})
    if others:
        n = others[0]
        raise MasktaxError(
            f"{root} holds the unfinished shards of a run on {n} processes (this command runs {world}); rerun it "
            f"on {n} processes to finish it, or delete {Path(root) / SHARDS} to score those items again"
        )


class ShardStore(RunStore):
    """One process's view of a sharded run dir: finished = in items.jsonl or in its own shard file;
    `append` writes to its shard file. It never writes config.json (process 0's `RunStore.open`
    created or checked it before the others open)."""

    def __init__(self, root: Path, rank: int, world: int) -> None:
        super().__init__(root, read_config(root))
        self.items = shard_file(root, rank, world)
        self.items.parent.mkdir(parents=True, exist_ok=True)
        repair_items(self.items)
        self._done.update(item_key(r) for r in read_records(self.items))


def merge_shards(root: str | os.PathLike, world: int, models: list[str]) -> int:
    """Append every process's records to items.jsonl in the one-process order, then delete the shard
    files; returns the number of records appended.

    Order: model by model (`models`, the order config.json lists them), process 0's records of that
    model, then process 1's, ... (records of a model not in `models` last). Records already in
    items.jsonl are skipped, so a merge cut short by a crash is finished by the next one.
    """
    root = Path(root)
    main = RunStore(root, read_config(root))
    files = [shard_file(root, r, world) for r in range(world)]
    by_model: dict[str, list[dict]] = {m: [] for m in models}  # each shard file read once
    for path in files:
        for record in read_records(path):
            by_model.setdefault(record["model"], []).append(record)
    appended = 0
    for records in by_model.values():
        fresh = [r for r in records if not main.is_done(item_key(r))]
        for start in range(0, len(fresh), MERGE_CHUNK):
            main.append(fresh[start:start + MERGE_CHUNK])
        appended += len(fresh)
    for path in files:
        path.unlink(missing_ok=True)
    if (root / SHARDS).is_dir() and not any((root / SHARDS).iterdir()):
        (root / SHARDS).rmdir()
    return appended
