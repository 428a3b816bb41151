"""Batched vs one-request-at-a-time lm-eval loglikelihood requests of `--model masktax`, in one process.

    python bench/bench_lmeval_batching.py                          # embedded-mdlm, 1 suite dataset x 4 docs
    python bench/bench_lmeval_batching.py --model embedded-ar --mc-num 1
    python bench/bench_lmeval_batching.py --model GSAI-ML/LLaDA-8B-Base --batch-size 32

Requests: the probe suite's multiple-choice documents (`masktax_suite_mc`: ~1220-token prompts, or the
last `--context` examples only, three continuations "A].", "B].", "C]." each), the Monte Carlo mask bound with `--mc-num` rows per request for
an MDLM. "One at a time" calls `loglikelihood([request])` per request, as LLaDA's and Dream's own
lm-eval classes serve them; "batched" hands lm-eval's whole list over once. Prints requests/s of
each, their ratio, and the largest difference of the two runs' log-likelihoods (same seeds, so only
padding / batch rounding differs).
"""

from __future__ import annotations

import argparse
import time

import torch


def requests(n_datasets: int, n_docs: int, n_context: int) -> list:
    from lm_eval.api.instance import Instance

    from masktax.lmeval.tasks.suite_data import load
    from masktax.tasks.suite import dataset_names

    out = []
    for name in dataset_names()[:n_datasets]:
        for doc in load(dataset=name, suite_n_test=n_docs)["test"]:
            prompt = "\n\n".join(doc["prompt"].split("\n\n")[-(n_context + 1):])  # the last n examples + the query
            for letter in "ABC":
                out.append(Instance(request_type="loglikelihood", doc=doc, arguments=(prompt, letter + "]."),
                                    idx=len(out)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-mdlm")
    parser.add_argument("--datasets", type=int, default=1, help="first N datasets of the suite")
    parser.add_argument("--docs", type=int, default=4, help="documents per dataset (3 requests each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode, alternating; the fastest counts")
    parser.add_argument("--context", type=int, default=50, help="in-context examples kept (50: all; 0: the query)")
    parser.add_argument("--mc-num", type=int, default=8)
    parser.add_argument("--batch-size", default="16", help="rows per forward of the batched run (or auto)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from masktax.lmeval.model import MasktaxLM

    if args.threads:
        torch.set_num_threads(args.threads)
    reqs = requests(args.datasets, args.docs, args.context)
    batch = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    lm = MasktaxLM(model=args.model, mc_num=args.mc_num, batch_size=batch, device=args.device)
    lm.loglikelihood(reqs[:2])  # warm-up
    t_batched = t_alone = float("inf")
    for _ in range(args.repeats):  # alternate the two modes; the fastest of each (a shared machine is noisy)
        t0 = time.perf_counter()
        batched = lm.loglikelihood(reqs)
        t_batched = min(t_batched, time.perf_counter() - t0)
        t0 = time.perf_counter()
        alone = [lm.loglikelihood([r])[0] for r in reqs]
        t_alone = min(t_alone, time.perf_counter() - t0)
    diff = max(abs(a[0] - b[0]) for a, b in zip(batched, alone, strict=True))
    same_greedy = all(a[1] == b[1] for a, b in zip(batched, alone, strict=True))
    n = len(reqs)
    tokens = sum(len(lm.tok_encode(r.args[0])) for r in reqs) / n
    print(f"model {args.model} ({lm.lm.kind}), {n} requests (prompts {tokens:.0f} tokens on average), "
          f"mc_num {args.mc_num}, batch {args.batch_size}, "
          f"device {lm.lm.device}, torch threads {torch.get_num_threads()}")
    print(f"one at a time: {n / t_alone:.2f} requests/s ({t_alone:.2f} s, fastest of {args.repeats})")
    print(f"batched:       {n / t_batched:.2f} requests/s ({t_batched:.2f} s, fastest of {args.repeats})")
    print(f"speed-up:      {t_alone / t_batched:.2f}x; max |difference| of log-likelihoods {diff:.2e}, "
          f"is_greedy {'identical' if same_greedy else 'DIFFERS'}")


if __name__ == "__main__":
    main()
