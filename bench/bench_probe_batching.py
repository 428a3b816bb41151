"""Batched vs one-at-a-time scoring of the same masks sweep, in one process, on the same model.

    python bench/bench_probe_batching.py                 # tiny random LLaDA-like model, built on the spot
    python bench/bench_probe_batching.py --model PATH    # any masktax-loadable MDLM

Prints items/s of each and their ratio, and checks both give the same predictions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def build_items(lm, *, model: str, n_items: int, datasets: int, grid: tuple[int, ...], seed: int = 0) -> list:
    from masktax.probes import masks
    from masktax.probes.items import encode_cell
    from masktax.tasks.suite import build_suite

    suite = build_suite(seed=seed)[:datasets]
    items = []
    for cell in masks.cells(masks.Options(grid=grid), lm.kind):
        for ds in suite:
            items += encode_cell(lm, ds, cell, model=model, probe="masks", seed=seed, fmt="base", n_items=n_items)
    return items


def timed(lm, items, batch_size) -> tuple[float, list[dict]]:
    from masktax.probes.engine import score_items

    start = time.perf_counter()
    records = [r for batch in score_items(lm, items, batch_size=batch_size) for r in batch]
    return time.perf_counter() - start, records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or checkpoint (default: tiny random LLaDA-like)")
    parser.add_argument("--n-items", type=int, default=8, help="test points per dataset")
    parser.add_argument("--datasets", type=int, default=2, help="first N datasets of the suite")
    parser.add_argument("--grid", default="0,1,10,50,200")
    parser.add_argument("--batch-size", default="auto", help="batched run's batch size (auto or N)")
    args = parser.parse_args(argv)

    from masktax.models import load

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            from masktax.models.tiny import build_stand_ins

            path = build_stand_ins(Path(tmp))[0]  # random-llada
        else:
            path = args.model
        lm = load(path)
        grid = tuple(int(x) for x in args.grid.split(","))
        items = build_items(lm, model=str(path), n_items=args.n_items, datasets=args.datasets, grid=grid)
        batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
        timed(lm, items[:2], 1)  # warm-up
        t_one, one = timed(lm, items, 1)
        t_batched, batched = timed(lm, items, batch_size)
    same = [r["pred_id"] for r in one] == [r["pred_id"] for r in batched]
    max_dp = max(abs(a["p_answer"] - b["p_answer"]) for a, b in zip(one, batched, strict=True))
    n = len(items)
    print(f"model: {Path(str(path)).name}  items: {n}  grid: {args.grid}  threads: {torch.get_num_threads()}")
    print(f"one at a time: {n / t_one:8.1f} items/s  ({t_one:.1f} s)")
    print(f"batched ({args.batch_size}): {n / t_batched:8.1f} items/s  ({t_batched:.1f} s)")
    print(f"speed-up: {t_one / t_batched:.2f}x  same predictions: {same}  max |dp(answer)|: {max_dp:.2e}")


if __name__ == "__main__":
    main()
