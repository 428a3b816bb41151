"""masktax.samplers.generate: `run` on a tiny checkpoint with the streaming view, and the view itself."""

from __future__ import annotations

import io

import pytest
import torch
from tiny import tiny_checkpoint, tiny_tokenizer

from masktax.samplers import StepEvent
from masktax.samplers.generate import BlockView, GenerateConfig, render_block, run


@pytest.fixture(scope="module")
def llada(tmp_path_factory):
    return tiny_checkpoint("llada", tmp_path_factory.mktemp("gen") / "llada", seed=5)


def test_run_streams_the_block(llada):
    stream = io.StringIO()
    cfg = GenerateConfig(model=str(llada), prompt="Answer:[", gen_length=8, block_length=4, steps=4)
    result = run(cfg, stream=stream)
    shown = stream.getvalue()
    assert shown.count("[step ") == 4 and shown.endswith("\r\x1b[K")
    assert result.forward_passes == 4 and result.tokens == 8


def test_block_view_shows_masks_as_placeholder():
    tok = tiny_tokenizer()
    mask = tok.mask_token_id
    ids = tok("cat red")["input_ids"]
    assert render_block(tok, [ids[0], mask, ids[1]], mask) == "cat_red"
    stream = io.StringIO()
    x = torch.tensor([[ids[0], mask, ids[1], mask]])
    BlockView(tok, mask, stream)(StepEvent(step=0, x=x, prompt_length=0, block=(0, 3), forward_passes=1))
    assert stream.getvalue() == "\r\x1b[K[step 1] cat_red"
