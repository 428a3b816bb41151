"""Samplers through the real `LoadedModel` of `masktax.models.load` on tiny LLaDA / Dream checkpoints."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_checkpoint, tiny_tokenizer
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.loaded import LoadedModel
from masktax.samplers import BLOCK_SAMPLER, SAMPLERS, SoftMaskConfig, decode, generate_semi_ar, left_pad

KW = {
    "semi_ar": {"steps": 8, "gen_length": 8, "block_length": 4},
    "dream": {"steps": 8, "gen_length": 8},
    "threshold": {"gen_length": 8, "block_length": 4},
}
BIDIRECTIONAL = [name for name in SAMPLERS if name != BLOCK_SAMPLER]  # block: tests/cli/test_generate_block.py


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {fam: load(tiny_checkpoint(fam, root / fam, seed=3)) for fam in ("llada", "dream")}


def _ids(text: str = "Options: (A) cat, (B) red, (C) run\nAnswer:[") -> torch.Tensor:
    return torch.tensor([tiny_tokenizer()(text)["input_ids"]])


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("name", BIDIRECTIONAL)
def test_adapter_equals_bare_module(adapters, family, name):
    lm = adapters[family]
    ids = _ids()
    via_adapter = SAMPLERS[name](lm, ids, **KW[name])
    bare = SAMPLERS[name](lm.model, ids, mask_id=lm.mask_id, shift=lm.shift, **KW[name])
    assert torch.equal(via_adapter, bare)
    assert not (via_adapter == lm.mask_id).any()


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("name", BIDIRECTIONAL)
def test_adapter_zero_lambda_equals_plain(adapters, family, name):
    lm = adapters[family]
    plain = SAMPLERS[name](lm, _ids(), **KW[name])
    soft = SAMPLERS[name](lm, _ids(), soft_mask=SoftMaskConfig(omega_s=0.0, fraction=1.0), **KW[name])
    assert torch.equal(plain, soft)


def test_adapter_left_padded_batch(adapters):
    lm = adapters["llada"]
    tok = tiny_tokenizer()
    rows = [tok("Answer:[")["input_ids"], tok("Options: (A) cat, (B) red\nAnswer:[")["input_ids"]]
    ids, am = left_pad(rows, tok.pad_token_id)
    batched = generate_semi_ar(lm, ids, attention_mask=am, steps=4, gen_length=4, block_length=4)
    for r, row in enumerate(rows):
        single = generate_semi_ar(lm, torch.tensor([row]), steps=4, gen_length=4, block_length=4)
        assert torch.equal(batched[r, ids.shape[1]:], single[0, len(row):])
    assert all(isinstance(t, str) for t in decode(tok, batched, ids.shape[1]))


def test_adapter_errors():
    tiny = nn.Embedding(4, 2)
    ar = LoadedModel(name="ar", model=tiny, tokenizer=None, kind="ar", mask_id=None, shift=True, max_length=8)
    with pytest.raises(MasktaxError, match="needs a mask token"):
        generate_semi_ar(ar, _ids(), steps=4, gen_length=4, block_length=4)
    with pytest.raises(MasktaxError, match="already aligns"):
        generate_semi_ar(ar, _ids(), steps=4, gen_length=4, block_length=4, mask_id=1, shift=True)
    deaf = LoadedModel(name="deaf", model=tiny, tokenizer=None, kind="mdlm", mask_id=3, shift=False,
                   max_length=8, honours_attention_mask=False)
    ids, am = left_pad([[1], [1, 2]], 0)
    with pytest.raises(MasktaxError, match="ignores attention_mask"):
        generate_semi_ar(deaf, ids, attention_mask=am, steps=4, gen_length=4, block_length=4)
