"""The causal models' prefix cache in the single-pass probes: speed-up and agreement with full passes.

For each probe, `run_probe` on an already-loaded causal model with `--no-prefix-cache` (every prompt
run whole) and with the cache (a dataset's shared in-context examples run once, then each item's
own suffix), alternated `--rounds` times in this process (the best time of each kept: a shared
machine disturbs both alike), then: items/s of each, the speed-up, and the agreement of the records
(predictions and letter choices equal, max |difference| of p_answer and entropy, accuracy per series
and x equal).

    .venv/bin/python bench/bench_prefix_cache.py                              # embedded-ar, 4 items x 16 datasets
    .venv/bin/python bench/bench_prefix_cache.py --n-items 2 --rounds 1       # ~1 CPU-minute
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from masktax.models import load
from masktax.models.loaded import LoadedModel
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.results.store import item_key, read_items

PROBE_OPTIONS = {"accuracy": {}, "locality": {"grid": (0, 20, 40)},
                 "query-position": {}, "context-length": {"grid": (0, 15, 30)}}


def timed_run(probe: str, lm: LoadedModel, *, cache: bool, n_items: int) -> tuple[float, dict[str, dict]]:
    """Seconds of one run of `probe` and its records by key."""
    module = PROBES[probe]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(models=(lm.name,), out=str(Path(tmp) / "run"), n_items=n_items, progress=False,
                        prefix_cache=cache)
        start = time.perf_counter()
        run_probe(module, cfg, module.Options(**PROBE_OPTIONS[probe]), loaded={lm.name: lm}, report=False)
        seconds = time.perf_counter() - start
        return seconds, {item_key(r): r for r in read_items(Path(tmp) / "run")}


def agreement(full: dict[str, dict], cached: dict[str, dict]) -> dict:
    """How far the cached records are from the full passes'."""
    assert full.keys() == cached.keys()
    accuracy: dict[str, dict[bool, list[bool]]] = defaultdict(lambda: {True: [], False: []})
    for k, r in full.items():
        point = f"{r['series']}@{r['x']}"
        accuracy[point][False].append(r["correct"])
        accuracy[point][True].append(cached[k]["correct"])
    return {
        "preds_equal": sum(full[k]["pred_id"] == cached[k]["pred_id"] for k in full) / len(full),
        "choices_equal": sum(full[k]["choice"] == cached[k]["choice"] for k in full) / len(full),
        "max_dp": max(abs(full[k]["p_answer"] - cached[k]["p_answer"]) for k in full),
        "max_dent": max(abs(full[k]["entropy"] - cached[k]["entropy"]) for k in full),
        "accuracy_equal": all(sum(v[True]) == sum(v[False]) for v in accuracy.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="embedded-ar", help="a causal model (name, card or checkpoint dir)")
    ap.add_argument("--probes", default=",".join(PROBE_OPTIONS))
    ap.add_argument("--n-items", type=int, default=4, help="test points per dataset (all 16 datasets)")
    ap.add_argument("--rounds", type=int, default=2, help="alternated runs of each setting; the best time kept")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load(args.model, device="cpu")
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, model {lm.name}")
    rows = []
    for probe in args.probes.split(","):
        best = {False: float("inf"), True: float("inf")}
        records: dict[bool, dict] = {}
        for _ in range(args.rounds):
            for cache in (False, True):
                seconds, records[cache] = timed_run(probe, lm, cache=cache, n_items=args.n_items)
                best[cache] = min(best[cache], seconds)
        n = len(records[False])
        rows.append((probe, n, n / best[False], n / best[True], best[False] / best[True],
                     agreement(records[False], records[True])))
        print(f"{probe}: {rows[-1][2]:.1f} -> {rows[-1][3]:.1f} items/s", flush=True)
    print("\n| probe | items | items/s full passes | items/s prefix cache | speed-up | preds equal "
          "| choices equal | max abs diff p_answer | max abs diff entropy | accuracy equal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for probe, n, full, cached, ratio, a in rows:
        print(f"| {probe} | {n} | {full:.1f} | {cached:.1f} | {ratio:.1f}x | {a['preds_equal']:.1%} "
              f"| {a['choices_equal']:.1%} | {a['max_dp']:.1e} | {a['max_dent']:.1e} | {a['accuracy_equal']} |")


if __name__ == "__main__":
    main()
