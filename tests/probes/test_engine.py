"""The batched scoring engine over a small fake LoadedModel (no suite, no real model needed)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes.engine import ProbeItem, answer_logits, plan_batches, score_items, score_logits

V = 40
LETTERS = (30, 31, 32)


class Out:
    def __init__(self, logits):
        self.logits = logits


class PoolModel(nn.Module):
    """logits_i = W(e_i + masked mean of e): bidirectional, honours attention_mask, seeded."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Embedding(V, 16)
        self.head = nn.Linear(16, V)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(V, 16, generator=g))
            self.head.weight.copy_(torch.randn(V, 16, generator=g))
            self.head.bias.zero_()

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        e = self.emb(input_ids) if inputs_embeds is None else inputs_embeds  # [b, l, d]
        m = torch.ones(e.shape[:2]) if attention_mask is None else attention_mask.float()  # [b, l]
        pooled = (e * m[..., None]).sum(1) / m.sum(1, keepdim=True)  # [b, d]
        return Out(self.head(e + pooled[:, None]))  # [b, l, V]


class PositionModel(nn.Module):
    """Raw logits at position i put all mass on token id i (mod V): shows which position is read."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        b, n = input_ids.shape
        pos = torch.arange(n) % V  # [l]
        return Out(20.0 * nn.functional.one_hot(pos, V).float()[None].expand(b, n, V) + self.dummy)  # [b, l, V]


def fake_adapter(model: nn.Module, *, shift: bool = False, honours: bool = True, max_length: int = 512) -> LoadedModel:
    return LoadedModel(name="fake", model=model, tokenizer=None, kind="mdlm", mask_id=1, shift=shift,
                   max_length=max_length, honours_attention_mask=honours, pad_id=0, eos_id=0)


def make_items(n: int, seed: int = 0, lo: int = 5, hi: int = 30) -> list[ProbeItem]:
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        length = int(torch.randint(lo, hi, (1,), generator=g))
        ids = torch.randint(2, 30, (length,), generator=g).tolist()
        pos = length - 1 - int(torch.randint(0, 3, (1,), generator=g)) if length > 3 else length - 1
        ids[pos] = 1
        answer = LETTERS[i % 3]
        items.append(ProbeItem("fake", "s", 0, "d", i, tuple(ids), pos, answer, LETTERS))
    return items


def test_in_place_reads_the_answer_position():
    items = [ProbeItem("fake", "s", 0, "d", 0, tuple([2] * 10), 7, 7, (7, 8, 9))]
    rec = next(score_items(fake_adapter(PositionModel()), items))[0]
    assert rec["pred_id"] == 7 and rec["correct"] and rec["choice"] == "A"


def test_shifted_adapter_reads_the_previous_raw_position():
    # A shifted model's raw position 6 predicts token 7: the aligned logits at 7 say 6.
    items = [ProbeItem("fake", "s", 0, "d", 0, tuple([2] * 10), 7, 6, (6, 7, 8))]
    rec = next(score_items(fake_adapter(PositionModel(), shift=True), items))[0]
    assert rec["pred_id"] == 6 and rec["correct"] and rec["choice_correct"]


def test_metrics_match_hand_computation():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    items = [ProbeItem("m", "s", 0, "d", i, (0, 1), 1, 1, (1, 2, 3)) for i in range(2)]
    r0, r1 = score_logits(items, logits)
    p = torch.softmax(logits[0], -1)
    assert r0["pred_id"] == 0 and not r0["correct"]
    assert r0["choice"] == "A" and r0["choice_correct"]
    assert r0["p_answer"] == pytest.approx(float(p[1]))
    assert r0["confidence"] == pytest.approx(float(p[0]))
    assert r0["entropy"] == pytest.approx(float(-(p * p.log()).sum()))
    assert r1["entropy"] == pytest.approx(math.log(4))
    assert r1["confidence"] == pytest.approx(0.25)


@pytest.mark.parametrize("honours", [True, False])
def test_batched_equals_unbatched(honours):
    lm = fake_adapter(PoolModel(), honours=honours)
    items = make_items(40, lo=8, hi=14)
    one = [r for b in score_items(lm, items, batch_size=1) for r in b]
    many = [r for b in score_items(lm, items, batch_size=16) for r in b]
    by_key = {(r["index"]): r for r in one}
    assert len(many) == len(one) == 40
    for r in many:
        u = by_key[r["index"]]
        assert r["pred_id"] == u["pred_id"] and r["choice"] == u["choice"]
        assert r["p_answer"] == pytest.approx(u["p_answer"], abs=1e-5)
        assert r["entropy"] == pytest.approx(u["entropy"], abs=1e-5)


def test_padding_is_invisible_to_a_mask_honouring_model():
    lm = fake_adapter(PoolModel())
    short, long_ = make_items(2, lo=6, hi=7)[0], make_items(1, seed=3, lo=7, hi=8)[0]
    alone = answer_logits(lm, [short])  # [1, V]
    padded = answer_logits(lm, [short, long_])  # [2, V]
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_plan_batches_groups_and_caps():
    lengths = [10, 50, 10, 11, 50, 10, 100]
    equal = plan_batches(lengths, max_rows=None, max_tokens=None, pad=False)
    assert all(len({lengths[i] for i in b}) == 1 for b in equal)
    assert sorted(i for b in equal for i in b) == list(range(len(lengths)))
    padded = plan_batches(lengths, max_rows=2, max_tokens=None, pad=True)
    assert all(len(b) <= 2 for b in padded)
    budget = plan_batches(lengths, max_rows=None, max_tokens=30, pad=True)
    assert all(len(b) * max(lengths[i] for i in b) <= 30 or len(b) == 1 for b in budget)


def test_whole_batches_split_each_cell_of_16_x_n_items_alike():
    lengths = [1223] * 160  # two cells of 80 items, one length (the demo's accuracy-like cells)
    plain = plan_batches(lengths, max_rows=None, max_tokens=16_384, pad=True)
    whole = plan_batches(lengths, max_rows=None, max_tokens=16_384, pad=True, whole=True)
    assert {len(b) for b in plain} == {13, 4}  # 13 rows: batches straddle the cells
    assert any(min(b) < 80 <= max(b) for b in plain)
    assert [len(b) for b in whole] == [8] * 20 and not any(min(b) < 80 <= max(b) for b in whole)
    assert plan_batches(lengths, max_rows=5, max_tokens=None, pad=True, whole=True)[0] == [0, 1, 2, 3, 4]


def test_skip_and_resume_keep_batch_plan():
    lm = fake_adapter(PoolModel())
    items = make_items(30, lo=8, hi=20)
    full = {r["index"]: r for b in score_items(lm, items, batch_size=8) for r in b}
    done = set(range(0, 30, 2))
    rest = [r for b in score_items(lm, items, batch_size=8, skip=lambda it: it.index in done) for r in b]
    assert {r["index"] for r in rest} == set(range(30)) - done
    for r in rest:
        assert r == full[r["index"]]  # identical floats: same batches as the full run


def test_prompt_longer_than_context_is_refused_before_compute():
    calls = []

    class Spy(PoolModel):
        def forward(self, **kw):
            calls.append(1)
            return super().forward(**kw)

    lm = fake_adapter(Spy(), max_length=12)
    with pytest.raises(MasktaxError, match="exceeds the 12-token context"):
        list(score_items(lm, make_items(5, lo=10, hi=20)))
    assert not calls


def test_auto_batch_size_uses_a_token_budget():
    lm = fake_adapter(PoolModel())
    recs = [r for b in score_items(lm, make_items(20), batch_size="auto") for r in b]
    assert len(recs) == 20 and {r["index"] for r in recs} == set(range(20))


class Counting(PoolModel):
    """PoolModel counting its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return super().forward(*args, **kwargs)


def test_shared_scores_compute_a_batch_once_with_the_same_records():
    from masktax.probes.engine import shared_scores

    items = make_items(20, lo=8, hi=14)
    model = Counting()
    lm = fake_adapter(model)
    alone = [r for b in score_items(lm, items, batch_size=4) for r in b]
    model.calls = 0
    with shared_scores():
        first = [r for b in score_items(lm, items, batch_size=4) for r in b]
        calls = model.calls
        renamed = [ProbeItem("fake", "other", 1, "d", it.index, it.ids, it.answer_pos, it.answer_id, it.letter_ids)
                   for it in items]
        second = [r for b in score_items(lm, renamed, batch_size=4) for r in b]
        assert model.calls == calls  # every batch came from the first run
        other_batches = [r for b in score_items(lm, items, batch_size=3) for r in b]
        assert model.calls > calls  # other batches are computed
    assert first == alone  # the same bits as outside the block
    assert [{**r, "series": "s", "x": 0} for r in second] == first
    assert len(other_batches) == len(items)
    before = model.calls
    after = [r for b in score_items(lm, items, batch_size=4) for r in b]
    assert model.calls == before + calls and after == first  # outside the block every batch is computed again
