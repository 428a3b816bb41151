"""Write a loadable HF directory from a pretraining run's latest checkpoint, while the run goes on.

    python scripts/snapshot_run.py runs/pretrain-cpu/ar /tmp/ar-snapshot
    masktax probe accuracy --model /tmp/ar-snapshot --n-items 20 --out /tmp/ar-acc

`final/` is written only when a run stops; this gives the same layout (config.json, safetensors,
tokenizer) for the newest `step-NNNNNN/` so a run can be probed mid-training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from masktax.embedded.tokenizer import build_tokenizer
from masktax.training import loop_utils as lu
from masktax.training.build import build_model
from masktax.training.corpus import Encoder, all_words
from masktax.training.pretrain import load_corpus_words, save_final
from masktax.training.pretrain_config import PretrainConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    cfg = PretrainConfig.from_dict(json.loads((args.run / "config.json").read_text()))
    ckpt = lu.latest_checkpoint(args.run)
    if ckpt is None:
        raise SystemExit(f"error: '{args.run}' has no checkpoint yet")
    words = load_corpus_words(cfg)
    tokenizer = build_tokenizer(all_words(words))
    enc = Encoder(tokenizer)
    model = build_model(cfg, vocab=len(tokenizer), mask_id=enc.mask_id, eos_id=enc.eos_id, init=False)
    missing, unexpected = model.load_state_dict(load_file(ckpt / "model.safetensors"), strict=False)
    if unexpected or any("embed" not in m and "lm_head" not in m and "ff_out" not in m for m in missing):
        raise SystemExit(f"error: checkpoint does not match the config (missing {missing}, unexpected {unexpected})")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    save_final(model, tokenizer, cfg, args.out)
    state = json.loads((ckpt / "state.json").read_text())
    print(f"{args.out}: {ckpt.name}, stage {state.get('stage_name')}, last gate {state['curriculum']['last_gate']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
