"""masktax.lmeval.scoring: the MC mask bound converges to the exact bound, is seeded, batch-independent;
extra masks and is_greedy (tiny native LLaDA, float32, one thread)."""

from __future__ import annotations

import pytest
import torch

from masktax.lmeval.scoring import (
    exact_mask_bound,
    greedy_matches,
    masked_counts,
    mdlm_loglikelihood,
    score_rows,
)
from masktax.models import load

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def llada(tiny_ckpts):
    return load(tiny_ckpts["llada"], device="cpu")


def request(lm, ctx: str, cont: str):
    return (lm.tokenizer.encode(ctx), lm.tokenizer.encode(cont))


def test_masked_counts_are_uniform_and_stratified():
    gen = torch.Generator().manual_seed(0)
    for length, mc in ((3, 6), (5, 5), (4, 128)):
        ks = masked_counts(length, mc, gen)
        assert len(ks) == mc and set(ks) <= set(range(1, length + 1))
        assert all(ks.count(k) == mc // length for k in range(1, length + 1))  # a multiple of L: each k equally often
    starts = {masked_counts(4, 1, torch.Generator().manual_seed(s))[0] for s in range(40)}
    assert starts == {1, 2, 3, 4}  # the random start reaches every k


def test_mc_estimate_converges_to_the_exact_mask_bound(llada):
    ctx, cont = request(llada, "Alice and Bob run over", "the Garden cat dog")
    assert len(cont) == 4
    exact = exact_mask_bound(llada, ctx, cont, mask_id=llada.mask_id)
    errors = {}  # mean absolute error over 6 seeds (measured: 2.0 at mc_num 4, 0.6 at 32, 0.08 at 512; |bound| 28)
    for mc in (4, 32, 512):
        runs = [mdlm_loglikelihood(llada, [(ctx, cont)], mask_id=llada.mask_id, mc_num=mc, seed=s, batch_size=64,
                                   greedy=False)[0][0] for s in range(6)]
        errors[mc] = sum(abs(r - exact) for r in runs) / len(runs)
    assert errors[512] < errors[32] < errors[4], errors
    assert errors[512] < 0.01 * abs(exact), (exact, errors)


def test_single_token_estimate_is_exact_and_greedy_is_the_argmax(llada):
    ctx, cont = request(llada, "Options : ( A ) cat , ( B ) run\nAnswer : [", "B")
    (ll, greedy), = mdlm_loglikelihood(llada, [(ctx, cont)], mask_id=llada.mask_id, mc_num=16, batch_size=8)
    ids = ctx + [llada.mask_id]
    s, = score_rows(llada, [ids], [[len(ctx)]], [cont], batch_size=1)
    assert ll == pytest.approx(float(s.logp[0]), abs=1e-6)
    assert greedy == (int(s.pred[0]) == cont[0])


def test_estimate_is_seeded_and_independent_of_batching_and_order(llada):
    reqs = [request(llada, "Alice and Bob", "run over the Garden"), request(llada, "France Japan", "Peru red"),
            request(llada, "cat", "dog apple tennis red blue")]
    kw = {"mask_id": llada.mask_id, "mc_num": 8, "seed": 3}
    a = mdlm_loglikelihood(llada, reqs, batch_size=1, **kw)
    b = mdlm_loglikelihood(llada, reqs, batch_size=32, **kw)
    c = mdlm_loglikelihood(llada, reqs[::-1], batch_size=5, **kw)[::-1]
    for x, y, z in zip(a, b, c, strict=True):
        assert x[0] == pytest.approx(y[0], abs=1e-5) and x[0] == pytest.approx(z[0], abs=1e-5)
        assert x[1] == y[1] == z[1]
    other_seed = mdlm_loglikelihood(llada, reqs, batch_size=32, mask_id=llada.mask_id, mc_num=8, seed=4)
    assert any(abs(x[0] - y[0]) > 1e-6 for x, y in zip(a, other_seed, strict=True))


def test_extra_masks_change_the_estimate_with_the_same_draws(llada):
    req = request(llada, "Options : ( A ) cat , ( B ) run\nAnswer : [", "B")
    base = mdlm_loglikelihood(llada, [req], mask_id=llada.mask_id, mc_num=4, batch_size=4)[0][0]
    more = mdlm_loglikelihood(llada, [req], mask_id=llada.mask_id, mc_num=4, batch_size=4, extra_masks=20)[0][0]
    ids = req[0] + [llada.mask_id] * 21
    s, = score_rows(llada, [ids], [[len(req[0])]], [req[1]], batch_size=1)
    assert more != pytest.approx(base, abs=1e-6)
    assert more == pytest.approx(float(s.logp[0]), abs=1e-6)


def test_greedy_reuses_the_fully_masked_row_without_changing_the_answer(llada):
    reqs = [request(llada, "Alice and Bob", "run over"), request(llada, "cat", "dog"),
            request(llada, "France Japan", "Peru red blue")]
    fresh = greedy_matches(llada, reqs, mask_id=llada.mask_id, extra_masks=3, batch_size=4)
    reused = [g for _, g in mdlm_loglikelihood(llada, reqs, mask_id=llada.mask_id, mc_num=64, extra_masks=3,
                                               batch_size=4)]
    assert reused == fresh


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_head_only_at_scored_positions_equals_full_logits(tiny_ckpts, family):
    lm = load(tiny_ckpts[family], device="cpu")
    rows = [lm.tokenizer.encode("Alice and Bob run over the Garden"), lm.tokenizer.encode("cat dog apple")]
    rows[0][3] = rows[1][1] = lm.mask_id
    positions, targets = [[3, 5], [1]], [[rows[0][3] + 1, 7], [9]]
    got = score_rows(lm, rows, positions, targets, batch_size=2)
    for r, (ids, pos, tgt) in enumerate(zip(rows, positions, targets, strict=True)):
        full = torch.log_softmax(lm.logits(torch.tensor([ids]))[0, pos].float(), dim=-1)  # [n, V]
        assert torch.allclose(got[r].logp, full[torch.arange(len(pos)), tgt], atol=1e-5)
        assert torch.equal(got[r].pred, full.argmax(-1))


def test_likelihood_guidance_combines_the_masked_prompt_pass(llada):
    ctx, cont = request(llada, "Options : ( A ) cat , ( B ) run\nAnswer : [", "B")
    (guided, _), = mdlm_loglikelihood(llada, [(ctx, cont)], mask_id=llada.mask_id, mc_num=4, batch_size=4, cfg=0.5)
    ids = torch.tensor([ctx + [llada.mask_id]])
    with torch.no_grad():
        cond = llada.logits(ids)[0, len(ctx)]  # [V]
        un = llada.logits(torch.full_like(ids, llada.mask_id))[0, len(ctx)]  # [V]
    expected = torch.log_softmax(un + 1.5 * (cond - un), dim=-1)[cont[0]]
    assert guided == pytest.approx(float(expected), abs=1e-5)
    (plain, _), = mdlm_loglikelihood(llada, [(ctx, cont)], mask_id=llada.mask_id, mc_num=4, batch_size=4)
    assert plain != pytest.approx(guided, abs=1e-4)
