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
        holes = mask.clone()
        holes[1, 4] = 0
        with pytest.raises(MasktaxError, match="padded on one side only"):
            lm.logits(padded, attention_mask=holes)
        set_canvas_length(lm, 11)
        with pytest.raises(MasktaxError, match="shorter than the input"):
            lm.logits(ids)
    lm.model.canvas_length = None
    with pytest.raises(MasktaxError, match="set_canvas_length"):
        lm.logits(ids)


@pytest.mark.parametrize("side", ["right", "left"])
def test_rows_of_any_prompt_and_canvas_length_score_as_alone(gemma, side):
    """A batch of rows whose prompts (longer than the sliding window) and canvases differ in length,
    padded on either side, with the canvas opening at each row's scored position (`logits_at`, the
    probes' path; also from embeddings): each row equals DiffusionGemmaForBlockDiffusion on it alone."""
    model, lm = gemma
    g = torch.Generator().manual_seed(0)
    rows = [(torch.randint(0, 300, (p,), generator=g), torch.randint(0, 300, (c,), generator=g))
            for p, c in ((40, 3), (25, 5), (33, 1), (60, 8))]
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((len(rows), width), lm.pad_id)
    mask = torch.zeros_like(ids)
    starts = []
    for i, (p, c) in enumerate(rows):
        lead = 0 if side == "right" else width - len(p) - len(c)
        ids[i, lead : lead + len(p) + len(c)] = torch.cat([p, c])
        mask[i, lead : lead + len(p) + len(c)] = 1
        starts.append(lead + len(p))
    pos = torch.tensor(starts)
    with torch.no_grad():
        want = torch.stack([model(input_ids=p[None], decoder_input_ids=c[None]).logits[0, 0] for p, c in rows])
        got = lm.logits_at(ids, pos, mask)  # [b, V]
        from_embeds = lm.logits_at(None, pos, mask, embeds=lm.embed(ids))
        full = lm.model(input_ids=ids, attention_mask=mask, canvas_start=pos).logits  # [b, l, V]
    torch.testing.assert_close(got, want.float(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_embeds, got, atol=1e-5, rtol=1e-5)
    for i, (p, c) in enumerate(rows):
        with torch.no_grad():
            alone = model(input_ids=p[None], decoder_input_ids=c[None]).logits[0]
        torch.testing.assert_close(full[i, starts[i] : starts[i] + len(c)], alone.float(), atol=1e-5, rtol=1e-5)
        assert torch.count_nonzero(full[i, : starts[i]]) == 0


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
