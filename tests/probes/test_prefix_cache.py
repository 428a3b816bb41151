"""A causal model's shared prompt prefix run once (models/prefix.py, the engine's `prefix_cache`): the
same records as full passes (floats to the last bits), the plan it makes, resume, and the flag."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from masktax.cli.main import main
from masktax.models import load
from masktax.models.loaded import LoadedModel
from masktax.models.prefix import run_prefix, takes_prefix_cache
from masktax.probes.engine import ProbeItem, plan_prefix_batches, score_items, shared_prefix_groups
from masktax.probes.items import Cell, encode_cell
from masktax.probes.run import main_suite

FLOATS = ("p_answer", "entropy", "confidence")


@pytest.fixture(scope="module")
def embedded_ar():
    return load("embedded-ar")


def suite_items(lm: LoadedModel, cell: Cell, n_datasets: int = 3, n_items: int = 4) -> list[ProbeItem]:
    return [it for d in main_suite(0, 1000)[:n_datasets]
            for it in encode_cell(lm, d, cell, model="m", probe="accuracy", seed=0, fmt="base", n_items=n_items)]


def records(lm: LoadedModel, items, **kwargs) -> dict[str, dict]:
    return {r_key(r): r for batch in score_items(lm, items, **kwargs) for r in batch}


def r_key(r: dict) -> str:
    return json.dumps([r["series"], r["x"], r["dataset"], r["index"]])


def assert_agree(a: dict[str, dict], b: dict[str, dict], tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        for f in a[k]:
            if f in FLOATS:
                assert abs(a[k][f] - b[k][f]) <= tol, (k, f, a[k][f], b[k][f])
            else:
                assert a[k][f] == b[k][f], (k, f)


def test_groups_follow_shared_starts():
    a, b = list(range(100, 300)), list(range(500, 700))
    seqs = [a + [1, 2], a + [3, 4, 5], a + [6], b + [7], b + [8, 9], [1] * 90, a + [1, 2]]
    groups = shared_prefix_groups(seqs, min_shared=64)
    assert groups == [(200, [0, 1, 2]), (200, [3, 4]), (0, [5]), (0, [6])]


def test_a_short_shared_preamble_does_not_merge_two_groups():
    pre = list(range(1000, 1080))  # 80 tokens every prompt starts with (a chat preamble)
    a, b = pre + list(range(100, 500)), pre + list(range(500, 900))
    groups = shared_prefix_groups([a + [1], a + [2], b + [3], b + [4]], min_shared=64)
    assert groups == [(480, [0, 1]), (480, [2, 3])]


def test_identical_prompts_keep_a_row_to_run():
    seq = list(range(200))
    assert shared_prefix_groups([seq, seq, seq], min_shared=64) == [(199, [0, 1, 2])]


def test_the_plan_caches_shared_contexts_and_leaves_the_rest(embedded_ar):
    right = suite_items(embedded_ar, Cell(series="right", x=0))
    left = suite_items(embedded_ar, Cell(series="left", x="left", query_position="left"))
    plan = plan_prefix_batches(embedded_ar, right + left, max_rows=None, max_tokens=16_384)
    cached = [i for _, p, batch in plan if p for i in batch]
    assert sorted(cached) == list(range(len(right)))  # a dataset's items share its in-context examples
    assert {p for _, p, _ in plan if p} and min(p for _, p, _ in plan if p) > 1000
    assert sorted(i for _, _, batch in plan for i in batch) == list(range(len(right) + len(left)))
    assert [min(b) for _, _, b in plan] == sorted(min(b) for _, _, b in plan)  # records in item order


@pytest.mark.parametrize("position", ["right", "middle"])
def test_cached_records_equal_full_passes(embedded_ar, position):
    items = suite_items(embedded_ar, Cell(series=position, x=position, query_position=position))
    full = records(embedded_ar, items)
    cached = records(embedded_ar, items, prefix_cache=True)
    assert_agree(full, cached)
    differ = sum(full[k][f] != cached[k][f] for k in full for f in FLOATS)
    assert differ > 0  # the cached path ran (it rounds differently in the last bits)


def test_items_that_share_nothing_score_as_without_the_cache(embedded_ar):
    items = suite_items(embedded_ar, Cell(series="left", x="left", query_position="left"))
    assert records(embedded_ar, items, prefix_cache=True) == records(embedded_ar, items)


def test_a_resumed_run_equals_the_uninterrupted_one_bit_for_bit(embedded_ar):
    items = suite_items(embedded_ar, Cell(series="one_mask", x=0), n_items=6)
    whole = records(embedded_ar, items, prefix_cache=True, batch_size=4)
    done = {it.key for it in items[::3]}
    rest = records(embedded_ar, items, prefix_cache=True, batch_size=4, skip=lambda it: it.key in done)
    assert rest and all(rest[k] == whole[k] for k in rest)
    assert len(rest) == len(items) - len(done)


def small_causal_lm(arch: str) -> LoadedModel:
    import transformers

    torch.manual_seed(0)
    common = dict(vocab_size=64, num_hidden_layers=2, max_position_embeddings=256)
    if arch == "qwen2":
        config = transformers.Qwen2Config(hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                          num_key_value_heads=2, **common)
        model = transformers.Qwen2ForCausalLM(config)
    else:
        config = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=256)
        model = transformers.GPT2LMHeadModel(config)
    return LoadedModel(name=arch, model=model.eval(), tokenizer=None, kind="ar", mask_id=None, shift=True,
                       max_length=256, pad_id=0)


def fake_items(n: int, shared: int, generator: torch.Generator) -> list[ProbeItem]:
    context = torch.randint(4, 60, (shared,), generator=generator).tolist()
    items = []
    for i in range(n):
        question = torch.randint(4, 60, (3 + i % 4,), generator=generator).tolist()
        ids = (*context, *question, 61, 62)  # ... the answer slot (62) then one more token
        items.append(ProbeItem(model="m", series="s", x=0, dataset=f"d{i % 2}", index=i, ids=ids,
                               answer_pos=len(ids) - 2, answer_id=1, letter_ids=(1, 2, 3)))
    return items


@pytest.mark.parametrize("arch", ["qwen2", "gpt2"])
def test_other_hf_causal_lms_agree(arch):
    lm = small_causal_lm(arch)
    assert takes_prefix_cache(lm)
    items = fake_items(10, 120, torch.Generator().manual_seed(1))
    plan = plan_prefix_batches(lm, items, max_rows=4, max_tokens=None)
    assert all(p == 120 for _, p, _ in plan)
    assert_agree(records(lm, items, batch_size=4), records(lm, items, batch_size=4, prefix_cache=True))


class NoCacheCausal(nn.Module):
    """A causal model whose forward takes a cache argument but returns none (a custom module)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 8)
        self.head = nn.Linear(8, 64)

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, use_cache=False, **_):
        return SimpleNamespace(logits=self.head(self.emb(input_ids).cumsum(1)))  # [b, l, V] causal


def test_a_model_that_gives_back_no_cache_is_scored_whole():
    torch.manual_seed(0)
    lm = LoadedModel(name="x", model=NoCacheCausal(), tokenizer=None, kind="ar", mask_id=None, shift=True,
                     max_length=512, pad_id=0)
    items = fake_items(6, 100, torch.Generator().manual_seed(2))
    assert takes_prefix_cache(lm)
    assert run_prefix(lm, torch.tensor(items[0].ids[:50])) is None
    assert not takes_prefix_cache(lm)  # remembered
    lm.extra.pop("prefix_cache")
    assert records(lm, items, prefix_cache=True) == records(lm, items)


def test_bidirectional_models_never_take_it(tiny_ckpts):
    assert not takes_prefix_cache(load(tiny_ckpts["llada"]))


def run_cli(*extra: str, out) -> int:
    return main(["probe", "accuracy", "--model", "embedded-ar", "--out", str(out), "--n-items", "2",
                 "--datasets", "country__smallest", "--no-progress", *extra])


def test_the_flag_is_part_of_the_run(tmp_path, capsys):
    assert run_cli(out=tmp_path / "a") == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["prefix_cache"] is True
    assert run_cli("--no-prefix-cache", out=tmp_path / "a") == 2
    assert "prefix_cache" in capsys.readouterr().err
    assert run_cli("--no-prefix-cache", out=tmp_path / "b") == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["prefix_cache"] is False


def test_a_run_dir_from_before_the_flag_resumes_without_the_cache(tmp_path, capsys):
    out = tmp_path / "old"
    assert run_cli("--no-prefix-cache", out=out) == 0
    config = json.loads((out / "config.json").read_text())
    del config["prefix_cache"]  # what an earlier version wrote: its AR items were full passes
    (out / "config.json").write_text(json.dumps(config))
    assert run_cli(out=out) == 2
    assert "prefix_cache: False there vs True here" in capsys.readouterr().err
    assert run_cli("--no-prefix-cache", out=out) == 0
