"""Fixtures shared by several test modules: tiny checkpoints on disk, a tiny LoRA fine-tuning run,
and one torch thread (the test machine has 2 cores shared with background jobs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import tiny_checkpoint


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (several times faster than 2 on a loaded 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_ckpts(tmp_path_factory) -> dict[str, str]:
    """Saved tiny checkpoints (read-only): native LLaDA, native Dream, HF Llama (AR)."""
    root = tmp_path_factory.mktemp("tiny_ckpts")
    return {f: str(tiny_checkpoint(f, root / f)) for f in ("llada", "dream", "ar")}


@pytest.fixture(scope="session")
def lora_run(tiny_ckpts, tmp_path_factory) -> Path:
    """A 2-step LoRA mask-agnostic fine-tuning run dir (`masktax finetune`) of the tiny LLaDA checkpoint."""
    from masktax.training.finetune.config import FinetuneConfig
    from masktax.training.finetune.train import run

    out = tmp_path_factory.mktemp("lora") / "run"
    cfg = FinetuneConfig(model=tiny_ckpts["llada"], data="synthetic", synthetic_n=40, max_context=96, min_masks=4,
                         max_masks=16, curriculum_steps=4, batch_size=2, grad_accum=1, lora_rank=4, save_every=2,
                         lr=1e-3, max_steps=2)
    run(cfg, out, device="cpu", progress=False)
    return out
