"""One process of a sharded run for tests/probes/test_shard.py (started with RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT as torchrun sets them): runs `masktax` commands (argv lists, JSON in
argv[1]) in order and prints how many records this process stored per command.

CHUNK (env): items per chunk of `score_cells` (a tiny run then has several chunks to hand out).
STOP_AFTER=n (env): the process kills itself (SIGKILL) right after its n-th stored batch.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import torch

from masktax.cli.main import main
from masktax.probes import run
from masktax.results.shards import ShardStore


def worker() -> int:
    torch.set_num_threads(1)
    run.CHUNK_ITEMS = int(os.environ["CHUNK"])
    stop = int(os.environ.get("STOP_AFTER", "0"))
    stored: list[int] = []
    append = ShardStore.append

    def counted(self, records):
        records = list(records)
        append(self, records)
        if records:
            stored.append(len(records))
            if len(stored) == stop:
                os.kill(os.getpid(), signal.SIGKILL)

    ShardStore.append = counted
    per_command = []
    for argv in json.loads(sys.argv[1]):
        status = main(argv)
        if status:
            return status
        per_command.append(sum(stored) - sum(per_command))
    print(json.dumps({"rank": int(os.environ["RANK"]), "stored": per_command}))
    return 0


if __name__ == "__main__":
    sys.exit(worker())
