"""Dream sampler: an independent re-statement of Dream's `_sample`, the schedule, sampling, errors."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_mdlm import MASK_ID, TinyMDLM, prompt

from masktax.errors import MasktaxError
from masktax.samplers import generate_dream
from masktax.samplers.dream import filter_logits


def reference_dream(model, prompt_ids, steps, gen_length, alg, eps=1e-3):
    """Greedy Dream decoding in loops; logits shifted right by one as Dream's are."""
    b, lp = prompt_ids.shape
    x = [list(row) + [MASK_ID] * gen_length for row in prompt_ids.tolist()]
    ts = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        with torch.no_grad():
            raw = model(input_ids=torch.tensor(x)).logits
        for row in range(b):
            masked = [j for j in range(lp, lp + gen_length) if x[row][j] == MASK_ID]
            scored = []
            for j in masked:
                vec = raw[row, j - 1].clone()  # shifted: position j predicted from j - 1
                vec[MASK_ID] = float("-inf")
                p = torch.softmax(vec.float(), dim=0)
                top = sorted(p.tolist(), reverse=True)
                tok = int(p.argmax())
                if alg == "maskgit_plus":
                    conf = top[0]
                elif alg == "topk_margin":
                    conf = top[0] - top[1]
                else:
                    conf = sum(q * math.log(q + 1e-10) for q in p.tolist())
                scored.append((conf, -j, tok))
            n = len(masked)
            k = n if i == steps - 1 else int(torch.tensor(float(n)) * (1 - ts[i + 1] / ts[i]))
            scored.sort(reverse=True)
            for _, neg_j, tok in scored[:k]:
                x[row][-neg_j] = tok
    return torch.tensor(x)


@pytest.mark.parametrize("alg", ["maskgit_plus", "topk_margin", "entropy"])
@pytest.mark.parametrize("steps", [4, 10])
def test_greedy_matches_reference(alg, steps):
    model = TinyMDLM(seed=21)
    ids = prompt(seed=22)
    ours = generate_dream(model, ids, steps=steps, gen_length=10, mask_id=MASK_ID, alg=alg, shift=True)
    ref = reference_dream(model, ids, steps, 10, alg)
    assert torch.equal(ours, ref)


def test_schedule_commits_int_fraction_and_all_at_the_end():
    model = TinyMDLM(seed=23)
    ids = prompt(seed=24, b=1)
    _, hist = generate_dream(model, ids, steps=5, gen_length=20, mask_id=MASK_ID, return_history=True)
    ts = torch.linspace(1, 1e-3, 6)
    left, expected = 20, []
    for i in range(5):
        k = left if i == 4 else int(torch.tensor(float(left)) * (1 - ts[i + 1] / ts[i]))
        expected.append(k)
        left -= k
    assert hist.counts()[:, 0].tolist() == expected
    assert sum(expected) == 20


def test_origin_fills_everything_and_is_seeded():
    model = TinyMDLM(seed=25)
    ids = prompt(seed=26, b=3)

    def run(seed):
        return generate_dream(
            model, ids, steps=6, gen_length=12, mask_id=MASK_ID, alg="origin", temperature=1.0,
            generator=torch.Generator().manual_seed(seed), return_history=True,
        )

    (a, ha), (b, _), (c, _) = run(0), run(0), run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not (a == MASK_ID).any()
    assert ha.counts().sum(dim=0).tolist() == [12, 12, 12]


def test_alg_temp_samples_positions_reproducibly():
    model = TinyMDLM(seed=27)
    ids = prompt(seed=28, b=2)
    runs = [
        generate_dream(model, ids, steps=4, gen_length=12, mask_id=MASK_ID, alg_temp=0.5,
                       generator=torch.Generator().manual_seed(s), return_history=True)
        for s in (0, 0, 1)
    ]
    assert torch.equal(runs[0][1].order(), runs[1][1].order())
    assert not torch.equal(runs[0][1].order(), runs[2][1].order())
    assert runs[0][1].counts().sum().item() == 24


def test_top_k_and_top_p_filtering():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    low = torch.finfo(torch.float32).min
    assert (filter_logits(logits, 0.0, None, 2)[0, 2:] == low).all()
    p = torch.softmax(logits, -1)[0]
    kept = filter_logits(logits, 0.0, float(p[0] + 0.01), None)[0]
    assert kept[1] == 2.0 and kept[2] == low  # keeps the first token past the threshold


@pytest.mark.parametrize("kwargs,match", [
    ({"alg": "greedy"}, "unknown Dream alg"),
    ({"eps": 0.0}, "eps"),
    ({"top_p": 1.5}, "top_p"),
    ({"gen_length": 0}, "positive integer"),
])
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(MasktaxError, match=match):
        generate_dream(TinyMDLM(), prompt(), **{"steps": 4, "gen_length": 8, "mask_id": MASK_ID, **kwargs})
