"""Sharded probe runs (probes/shard.py, results/shards.py): two processes on CPU (gloo), started as
torchrun starts them, write the run dir of one process byte for byte, and resume shard by shard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.probes import run as run_module
from masktax.probes.shard import Shard
from masktax.results.shards import merge_shards, shard_file
from masktax.results.store import RunStore, item_key, read_items

CHUNK = 6  # items per chunk: the masks run below has 4 chunks of the LLaDA and 1 of the AR model
WORKER = Path(__file__).with_name("shard_worker.py")
OUTPUTS = ("items.jsonl", "summary.json", "summary.csv", "report.md", "env.json", "config.json")


def commands(ckpts: dict[str, str], out: Path) -> list[list[str]]:
    """A masks run (planned chunks, two models) then an uncertainty run (the probe's own loop,
    reusing the masks records), 3 items of 2 datasets."""
    common = ["--n-items", "3", "--datasets", "country__smallest,verb__largest", "--batch-size", "4", "--no-progress"]
    return [
        ["probe", "masks", "--model", ckpts["llada"], "--model", ckpts["ar"], "--grid", "0,1,2,3",
         "--out", str(out / "masks"), *common],
        ["probe", "uncertainty", "--model", ckpts["llada"], "--grid", "0,1", "--out", str(out / "uncertainty"), *common],
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(ckpts: dict[str, str], out: Path, stop: dict[int, int] | None = None,
           n_commands: int = 2) -> list[tuple[int, str, str]]:
    """Run the first `n_commands` of `commands` on 2 processes; per rank (exit status, stdout, stderr).
    stop: rank -> batches after which that process kills itself."""
    port, argv = free_port(), json.dumps(commands(ckpts, out)[:n_commands])
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "CHUNK": str(CHUNK), "STOP_AFTER": str((stop or {}).get(rank, 0)),
               "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), argv], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, *out) for p, out in zip(procs, outs, strict=True)]


def stored(results: list[tuple[int, str, str]]) -> list[list[int]]:
    """Per process, the records it stored per command."""
    return [json.loads(out.strip().splitlines()[-1])["stored"] for _, out, _ in results]


def outputs(run_dir: Path) -> dict[str, str]:
    """The run's files with its own path replaced (reused records and reports name their run dirs)
    and without the git commit (other work is committed to this checkout while the tests run)."""
    texts = {f: (run_dir / f).read_text().replace(str(run_dir.parent), "OUT") for f in OUTPUTS}
    return {f: "".join(line for line in text.splitlines(True) if '"git_commit"' not in line) for f, text in texts.items()}


@pytest.fixture(scope="module")
def one_process(tiny_ckpts, tmp_path_factory, one_thread) -> Path:
    """The same commands in this one process (one thread, as each worker; env.json records it)."""
    out = tmp_path_factory.mktemp("one")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "CHUNK_ITEMS", CHUNK)
        for argv in commands(tiny_ckpts, out):
            assert main(argv) == 0
    return out


def test_two_processes_write_the_run_dir_of_one(tiny_ckpts, one_process, tmp_path):
    results = launch(tiny_ckpts, tmp_path)
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    n = [len(list(read_items(one_process / p))) for p in ("masks", "uncertainty")]
    assert n == [2 * 3 * 4 + 2 * 3, 2 * 3 * (2 + 2)]
    per_rank = stored(results)
    assert all(n > 0 for counts in per_rank for n in counts)  # both processes scored in both runs
    assert [sum(c) for c in zip(*per_rank, strict=True)] == n  # every item stored once (uncertainty: reused or scored)
    two, one = outputs(tmp_path / "masks"), outputs(one_process / "masks")
    assert two == one  # byte for byte (single-pass probe: the one-process order)
    two, one = outputs(tmp_path / "uncertainty"), outputs(one_process / "uncertainty")
    assert sorted(two.pop("items.jsonl").splitlines()) == sorted(one.pop("items.jsonl").splitlines())
    assert two == one  # its own loop runs cell by cell over the datasets: the same records in another order
    assert not (tmp_path / "masks" / "shards").exists() and not (tmp_path / "uncertainty" / "shards").exists()
    done = [out for _, out, _ in results]
    assert "report at" in done[0] and "report at" not in done[1]  # process 0 speaks for both


def test_a_killed_process_resumes_its_own_shard(tiny_ckpts, one_process, tmp_path):
    first = launch(tiny_ckpts, tmp_path, stop={1: 1}, n_commands=1)  # masks; process 1 killed after its first batch
    assert first[1][0] == -9 and first[0][0] == 2
    assert first[0][2].startswith("masktax: error: another process of this sharded run ended early")
    masks = tmp_path / "masks"
    assert not (masks / "items.jsonl").exists() and not (masks / "summary.json").exists()
    share0, cut1 = (len(shard_file(masks, r, 2).read_text().splitlines()) for r in (0, 1))
    assert share0 > 0 and cut1 > 0 and share0 + cut1 < 30  # process 0 finished its share, process 1 did not

    module = PROBES["masks"]  # another number of processes: refused, nothing touched
    with pytest.raises(MasktaxError, match="unfinished shards of a run on 2 processes"):
        run_probe(module, RunConfig(models=(tiny_ckpts["llada"], tiny_ckpts["ar"]), out=str(masks), n_items=3,
                                    datasets=("country__smallest", "verb__largest"), batch_size=4, progress=False),
                  module.Options(grid=(0, 1, 2, 3)))

    second = launch(tiny_ckpts, tmp_path, n_commands=1)  # the same command again
    assert [code for code, _, _ in second] == [0, 0], [err for _, _, err in second]
    assert [s[0] for s in stored(second)] == [0, 30 - share0 - cut1]  # each process continued its own shard
    assert outputs(masks) == outputs(one_process / "masks")
    assert not (masks / "shards").exists()


def test_each_item_belongs_to_exactly_one_process_in_contiguous_stretches():
    datasets = ("a", "b", "c", "d")
    keys = [item_key({"model": "m", "series": "masks", "x": x, "dataset": d, "index": i})
            for d in datasets for x in (0, 1, 2) for i in range(5)]  # dataset by dataset, as attribution's loop
    chunks = [keys[k:k + 20] for k in range(0, len(keys), 20)]  # 3 planned groups of 20 items
    for world in (1, 2, 3, 4, 6):
        planned, own_loop = [Shard(r, world, datasets) for r in range(world)], [Shard(r, world, datasets) for r in range(world)]
        for shard in planned:
            shard.plan("m", chunks)
        for shards, groups in ((planned, 3), (own_loop, 4)):
            owner = [[s.owns(k) for s in shards].index(True) for k in keys]
            assert all(sum(s.owns(k) for s in shards) == 1 for k in keys)
            assert owner == sorted(owner)  # contiguous stretches: concatenation is the plan order
            assert len(set(owner)) == min(world, groups)  # every process busy while there are groups


def test_merge_appends_model_by_model_and_process_by_process(tmp_path):
    store = RunStore.open(tmp_path, {"probe": "masks"})
    record = lambda m, i: {"model": m, "series": "masks", "x": 0, "dataset": "d", "index": i}  # noqa: E731
    store.append([record("a", 0)])
    for rank, records in ((0, [record("a", 0), record("a", 1), record("b", 0)]), (1, [record("a", 2), record("b", 1)])):
        path = shard_file(tmp_path, rank, 2)
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert merge_shards(tmp_path, 2, ["a", "b"]) == 4
    assert [(r["model"], r["index"]) for r in read_items(tmp_path)] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    assert not (tmp_path / "shards").exists()
