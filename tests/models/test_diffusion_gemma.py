"""DiffusionGemma (uniform noise) behind the LoadedModel: single-step canvas logits and canvas tokens."""

from __future__ import annotations

import pytest
import torch
from tiny import save_tiny_checkpoint, tiny_diffusion_gemma, tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.diffusion_gemma import canvas_span, canvas_tokens, set_canvas_length


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    model = tiny_diffusion_gemma(seed=0)
    path = save_tiny_checkpoint(model, tiny_tokenizer(), tmp_path_factory.mktemp("dgemma"))
    return model, load(path)


PROMPT = torch.tensor([[5, 17, 300, 2, 41, 999, 8, 9], [7, 7, 2, 120, 64, 3, 11, 12]])
CANVAS = torch.tensor([[100, 3, 400], [1, 2, 3]])


def test_kind_and_ids(gemma):
    _, lm = gemma
    assert (lm.kind, lm.mask_id, lm.shift) == ("uniform", None, False)
    assert lm.max_length == 4096
    with pytest.raises(MasktaxError, match="needs a mask token"):
        lm.require_mask("the mask sweep")


def test_canvas_logits_equal_the_model_forward(gemma):
    model, lm = gemma
    ids = torch.cat([PROMPT, CANVAS], dim=1)  # [2, 11]
    with torch.no_grad():
        want = model(input_ids=PROMPT, decoder_input_ids=CANVAS).logits  # no self-conditioning logits
        with canvas_span(lm, 3):
            got = lm.logits(ids)
            from_embeds = lm.logits_from_embeds(lm.embed(ids))
    assert got.shape == (2, 11, len(tiny_tokenizer()))
    torch.testing.assert_close(got[:, 8:], want.float(), atol=1e-5, rtol=1e-5)
    assert torch.count_nonzero(got[:, :8]) == 0
    torch.testing.assert_close(from_embeds, got, atol=1e-5, rtol=1e-5)
    assert lm.model.canvas_length is None  # restored after the block


def test_left_padding_and_errors(gemma):
    _, lm = gemma
    set_canvas_length(lm, 3)
    ids = torch.cat([PROMPT, CANVAS], dim=1)
    short = ids[0, 2:]
    padded = torch.stack([torch.cat([torch.full((2,), lm.pad_id), short]), ids[1]])
    mask = torch.ones_like(padded)
    mask[0, :2] = 0
    with torch.no_grad():
        got = lm.logits(padded, attention_mask=mask)
        torch.testing.assert_close(got[0, -3:], lm.logits(short[None])[0, -3:], atol=1e-5, rtol=1e-5)
        right = mask.flip(-1)
        with pytest.raises(MasktaxError, match="pad on the left"):
            lm.logits(padded, attention_mask=right)
        set_canvas_length(lm, 11)
        with pytest.raises(MasktaxError, match="shorter than the input"):
            lm.logits(ids)
    lm.model.canvas_length = None
    with pytest.raises(MasktaxError, match="set_canvas_length"):
        lm.logits(ids)


def test_canvas_tokens_match_the_sampler(gemma):
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
        EntropyBoundSampler,
        EntropyBoundSamplerConfig,
    )

    model, lm = gemma
    vocab = model.config.text_config.vocab_size
    drawn = canvas_tokens(lm, 8, torch.Generator().manual_seed(123))
    assert drawn.shape == (8,) and drawn.dtype == torch.long and 0 <= int(drawn.min()) and int(drawn.max()) < vocab
    assert torch.equal(drawn, canvas_tokens(lm, 8, torch.Generator().manual_seed(123)))
    assert not torch.equal(drawn, canvas_tokens(lm, 8, torch.Generator().manual_seed(124)))
    sampler = EntropyBoundSampler(EntropyBoundSamplerConfig(entropy_bound=1.0), canvas_length=8,
                                  vocab_size=vocab, max_denoising_steps=4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        theirs = sampler.initialize_canvas(batch_size=1, device=torch.device("cpu"))[0]
    assert torch.equal(drawn, theirs)
