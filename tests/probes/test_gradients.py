"""Gradient attribution on tiny random models: exactness, finite differences, batching, frozen weights."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_llada, tiny_llama_ar, tiny_tokenizer

from masktax.models.loaded import LoadedModel
from masktax.probes.gradients import (
    attribution_scores,
    embedding_gradients,
    group_means,
    normalise,
    pad_batch,
)


def lm(kind: str, dtype=torch.float32, seed: int = 0) -> LoadedModel:
    tok = tiny_tokenizer()
    if kind == "ar":
        model, shift, mask = tiny_llama_ar(seed), True, None
    else:
        model, shift, mask = tiny_llada(seed), False, tok.mask_token_id
    model = model.to(dtype)
    return LoadedModel(name=kind, model=model, tokenizer=tok, kind=kind, mask_id=mask, shift=shift, max_length=4096,
                   pad_id=tok.pad_token_id, eos_id=tok.eos_token_id, extra={"position_ids": kind == "ar"})


def prompt(n: int, n_masks: int, seed: int = 0) -> tuple[list[int], int]:
    tok = tiny_tokenizer()
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(5, len(tok) - 5, (n,), generator=g).tolist()
    return body + [tok.mask_token_id] * (1 + n_masks), n


@pytest.fixture(scope="module")
def llada():
    return lm("mdlm")


def test_tokens_a_causal_model_cannot_see_get_exactly_zero():
    ar = lm("ar")
    ids, pos = prompt(30, 6)
    scores, _ = attribution_scores(ar, torch.tensor([ids]), torch.tensor([pos]))  # [1, l]
    assert torch.all(scores[0, pos:] == 0.0)  # the answer position and the masks after it
    assert torch.all(scores[0, :pos] > 0)


def test_gradient_matches_finite_differences_in_float64():
    a = lm("mdlm", dtype=torch.float64, seed=1)
    ids, pos = prompt(12, 3, seed=1)
    ids_t, pos_t = torch.tensor([ids]), torch.tensor([pos])
    grads, pred = embedding_gradients(a, ids_t, pos_t)  # [1, l, d]
    base = a.embed(ids_t).detach()  # [1, l, d]
    h = 1e-6
    for i, k in [(0, 0), (5, 7), (pos, 3), (pos + 2, 11)]:
        plus, minus = base.clone(), base.clone()
        plus[0, i, k] += h
        minus[0, i, k] -= h
        with torch.no_grad():
            fp = a.logits_from_embeds(plus)[0, pos, pred[0]]
            fm = a.logits_from_embeds(minus)[0, pos, pred[0]]
        fd = float((fp - fm) / (2 * h))
        assert fd == pytest.approx(float(grads[0, i, k]), rel=1e-5, abs=1e-8)


def test_batched_equals_unbatched_and_weights_get_no_grad(llada):
    seqs = [prompt(n, 4, seed=n) for n in (20, 26, 23)]
    ids, mask = pad_batch([s for s, _ in seqs], tiny_tokenizer().pad_token_id)
    flags = [p.requires_grad for p in llada.model.parameters()]
    batched, pred_b = attribution_scores(llada, ids, torch.tensor([p for _, p in seqs]), mask)
    assert all(p.grad is None for p in llada.model.parameters())
    assert [p.requires_grad for p in llada.model.parameters()] == flags  # restored
    for row, (s, p) in enumerate(seqs):
        single, pred_1 = attribution_scores(llada, torch.tensor([s]), torch.tensor([p]))
        assert int(pred_1[0]) == int(pred_b[row])
        torch.testing.assert_close(batched[row, : len(s)], single[0], rtol=1e-4, atol=1e-6)
        assert torch.all(batched[row, len(s):] == 0)


def test_normalised_scores_lie_in_unit_interval_and_groups(llada):
    ids, pos = prompt(80, 5)
    scores, _ = attribution_scores(llada, torch.tensor([ids]), torch.tensor([pos]))
    norm = normalise(scores[0])
    assert float(norm.min()) >= 0.0 and float(norm.max()) == 1.0
    assert torch.equal(normalise(torch.zeros(4)), torch.zeros(4))
    g = group_means([0.0, 0.5, 1.0, 0.2, 0.3, 0.4], answer_pos=3, n_masks=2, last_n=2)
    assert g == pytest.approx({"masks": 0.35, "last50": 0.75, "nonmask": 0.5, "answer": 0.2})
    assert group_means([1.0, 0.5], answer_pos=1, n_masks=0)["masks"] is None
