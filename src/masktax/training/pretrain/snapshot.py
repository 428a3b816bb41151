"""A loadable HF directory from a pretraining run's latest checkpoint, while the run goes on.

    masktax pretrain snapshot runs/pretrain-cpu/ar /tmp/ar-snapshot
    masktax probe accuracy --model /tmp/ar-snapshot --n-items 20 --out /tmp/ar-acc

`final/` is written only when a run stops; this writes the same layout (config.json, safetensors,
tokenizer, in the run's `save_dtype`) for the newest `step-NNNNNN/`, so a run can be probed
mid-training. At the step of `final/` the two are the same model. OUT is written whole or not at
all (`training.rundir.write_dir`); an existing OUT is replaced only when it is empty or an earlier
snapshot.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from masktax.embedded.tokenizer import build_tokenizer
from masktax.errors import MasktaxError
from masktax.results.store import read_json
from masktax.training.loop import latest_checkpoint
from masktax.training.pretrain.build import build_model
from masktax.training.pretrain.config import PretrainConfig
from masktax.training.pretrain.corpus import Encoder, all_words
from masktax.training.pretrain.train import load_corpus_words, save_final
from masktax.training.rundir import write_dir

# Tensors a checkpoint may leave out: tied output weights (they are the embedding).
TIED = ("embed", "lm_head", "ff_out")


def snapshot_run(run_dir: str | Path, out: str | Path) -> tuple[Path, dict]:
    """Write `out` from the newest checkpoint of pretraining run `run_dir`; returns the checkpoint
    and its state.json."""
    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise MasktaxError(f"pretraining run dir '{run_dir}' does not exist")
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "model.safetensors").is_file())):
        raise MasktaxError(f"'{out}' exists and is not an earlier snapshot; pass a new directory")
    cfg = PretrainConfig.from_dict(read_json(run_dir / "config.json"), source=f"'{run_dir / 'config.json'}'")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise MasktaxError(f"'{run_dir}' has no checkpoint yet")
    tokenizer = build_tokenizer(all_words(load_corpus_words(cfg)))
    encoder = Encoder(tokenizer)
    model = build_model(cfg, vocab=len(tokenizer), mask_id=encoder.mask_id, eos_id=encoder.eos_id, init=False)
    missing, unexpected = model.load_state_dict(load_file(ckpt / "model.safetensors"), strict=False)
    if unexpected or any(not any(t in m for t in TIED) for m in missing):
        raise MasktaxError(f"checkpoint '{ckpt}' does not match the run's config "
                           f"(missing {missing}, unexpected {unexpected})")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    write_dir(out, lambda path: save_final(model, tokenizer, cfg, path))
    return ckpt, read_json(ckpt / "state.json")
