"""LLaDA semi-AR sampler: the reference schedule, an independent re-statement, sampling, errors."""

from __future__ import annotations

import pytest
import torch
from tiny_mdlm import EOS_ID, MASK_ID, TinyMDLM, prompt

from masktax.errors import MasktaxError
from masktax.samplers import generate_semi_ar, left_pad
from masktax.samplers.common import num_transfer_tokens

# ---------------------------------------------------------------------------------------------
# Independent re-statement of LLaDA's reference generate() (greedy, low_confidence, optional
# CFG), in plain loops over rows and positions. Like masktax, the mask token's own logit is
# excluded from the choice (see samplers/decode_state.py).


def reference_llada(model, prompt_ids, steps, gen_length, block_length, shifted=False, cfg_scale=0.0):
    b, lp = prompt_ids.shape
    x = [list(row) + [MASK_ID] * gen_length for row in prompt_ids.tolist()]
    num_blocks = gen_length // block_length
    per_block = steps // num_blocks

    def run(seqs):
        with torch.no_grad():
            raw = model(input_ids=torch.tensor(seqs)).logits.double()
        if shifted:  # position i predicted from hidden state i - 1; position 0 repeats itself
            out = raw.clone()
            for i in range(1, raw.shape[1]):
                out[:, i] = raw[:, i - 1]
            return out
        return raw

    for blk in range(num_blocks):
        lo, hi = lp + blk * block_length, lp + (blk + 1) * block_length
        plan = []
        for row in range(b):
            n = sum(1 for j in range(lo, hi) if x[row][j] == MASK_ID)
            plan.append([n // per_block + (1 if s < n % per_block else 0) for s in range(per_block)])
        for step in range(per_block):
            logits = run(x)
            if cfg_scale > 0:
                un = [[MASK_ID] * lp + row[lp:] for row in x]
                un_logits = run(un)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            for row in range(b):
                scored = []
                for j in range(lo, hi):
                    if x[row][j] != MASK_ID:
                        continue
                    vec = logits[row, j].clone()
                    vec[MASK_ID] = float("-inf")
                    tok = int(vec.argmax())
                    conf = float(torch.softmax(vec, dim=0)[tok])
                    scored.append((conf, -j, tok))
                scored.sort(reverse=True)
                for _conf, neg_j, tok in scored[: plan[row][step]]:
                    x[row][-neg_j] = tok
    return torch.tensor(x)


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("steps,gen_length,block_length", [(8, 8, 8), (6, 12, 4), (4, 12, 6), (12, 12, 3)])
def test_greedy_matches_reference(shifted, steps, gen_length, block_length):
    model = TinyMDLM(seed=1)
    ids = prompt(seed=2)
    ours = generate_semi_ar(
        model, ids, steps=steps, gen_length=gen_length, block_length=block_length, mask_id=MASK_ID, shift=shifted
    )
    ref = reference_llada(model, ids, steps, gen_length, block_length, shifted=shifted)
    assert torch.equal(ours, ref)


def test_cfg_matches_reference():
    model = TinyMDLM(seed=3)
    ids = prompt(seed=4)
    ours = generate_semi_ar(model, ids, steps=8, gen_length=8, block_length=4, mask_id=MASK_ID, cfg_scale=1.5)
    ref = reference_llada(model, ids, 8, 8, 4, cfg_scale=1.5)
    assert torch.equal(ours, ref)


def test_schedule_split_remainder_first():
    counts = torch.tensor([10, 3, 0])
    plan = num_transfer_tokens(counts, 4)
    assert plan.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert plan.sum(dim=1).tolist() == counts.tolist()


def test_history_counts_follow_schedule_and_fill_every_mask():
    model = TinyMDLM(seed=5)
    ids = prompt(seed=6)
    out, hist = generate_semi_ar(
        model, ids, steps=6, gen_length=12, block_length=4, mask_id=MASK_ID, return_history=True
    )
    assert not (out[:, ids.shape[1]:] == MASK_ID).any()
    assert hist.num_steps == 6 and hist.forward_passes == 6
    per_block = num_transfer_tokens(torch.tensor([4]), 2)[0].tolist()  # [2, 2]
    assert hist.counts()[:, 0].tolist() == per_block * 3
    assert hist.counts().sum(dim=0).tolist() == [12, 12]
    order = hist.order()
    assert (order[:, : ids.shape[1]] == -1).all()
    # blocks are decoded left to right: block k is committed in steps 2k and 2k+1
    for k in range(3):
        cols = slice(ids.shape[1] + 4 * k, ids.shape[1] + 4 * (k + 1))
        assert set(order[:, cols].flatten().tolist()) <= {2 * k, 2 * k + 1}


def test_committed_tokens_never_change():
    model = TinyMDLM(seed=7)
    ids = prompt(seed=8)
    snapshots = []
    generate_semi_ar(
        model, ids, steps=8, gen_length=8, block_length=8, mask_id=MASK_ID, temperature=1.0,
        generator=torch.Generator().manual_seed(0), on_step=lambda ev: snapshots.append(ev.x.clone()),
    )
    assert len(snapshots) == 8
    for before, after in zip(snapshots, snapshots[1:], strict=False):
        fixed = before != MASK_ID
        assert torch.equal(before[fixed], after[fixed])
    assert torch.equal(snapshots[-1][:, : ids.shape[1]], ids)


def test_greedy_is_deterministic():
    model = TinyMDLM(seed=9)
    ids = prompt(seed=10)
    a = generate_semi_ar(model, ids, steps=4, gen_length=8, block_length=4, mask_id=MASK_ID)
    b = generate_semi_ar(model, ids, steps=4, gen_length=8, block_length=4, mask_id=MASK_ID)
    assert torch.equal(a, b)


@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
def test_gumbel_sampling_reproducible_under_seed(remasking):
    model = TinyMDLM(seed=11, scale=1.0)
    ids = prompt(seed=12, b=4)

    def run(seed):
        return generate_semi_ar(
            model, ids, steps=8, gen_length=16, block_length=8, mask_id=MASK_ID, temperature=1.0,
            remasking=remasking, generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_left_padded_batch_matches_single_prompts():
    model = TinyMDLM(seed=13)
    rows = [prompt(seed=14, b=1, lp=3)[0].tolist(), prompt(seed=15, b=1, lp=6)[0].tolist()]
    ids, am = left_pad(rows, EOS_ID)
    batched = generate_semi_ar(model, ids, attention_mask=am, steps=8, gen_length=8, block_length=4, mask_id=MASK_ID)
    for r, row in enumerate(rows):
        single = generate_semi_ar(
            model, torch.tensor([row]), steps=8, gen_length=8, block_length=4, mask_id=MASK_ID
        )
        assert torch.equal(batched[r, ids.shape[1]:], single[0, len(row):])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"gen_length": 10, "block_length": 4}, "multiple of block_length"),
        ({"steps": 3, "gen_length": 8, "block_length": 4}, "multiple of the number of blocks"),
        ({"remasking": "entropy"}, "unknown remasking"),
        ({"steps": 0}, "positive integer"),
        ({"temperature": -1.0}, ">= 0"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    base = {"steps": 4, "gen_length": 8, "block_length": 4, "mask_id": MASK_ID}
    with pytest.raises(MasktaxError, match=match):
        generate_semi_ar(TinyMDLM(), prompt(), **{**base, **kwargs})


def test_bad_prompt_and_missing_mask_id_raise():
    model = TinyMDLM()
    with pytest.raises(MasktaxError, match="2-D"):
        generate_semi_ar(model, prompt()[0], steps=4, gen_length=4, block_length=4, mask_id=MASK_ID)
    with pytest.raises(MasktaxError, match="mask_id is required"):
        generate_semi_ar(model, prompt(), steps=4, gen_length=4, block_length=4)
    with pytest.raises(MasktaxError, match="outside the model's vocabulary"):
        generate_semi_ar(model, prompt(), steps=4, gen_length=4, block_length=4, mask_id=500)
