"""MasktaxLM (`--model masktax`): the AR path gives exactly lm-eval's own `hf` numbers for the same checkpoint;
MDLM requests, extra masks, chat templates, generate_until and bad model_args (one line)."""

from __future__ import annotations

import lm_eval
import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_model
from lmeval_tasks import LL_DOCS, ROLL_DOCS

from masktax.errors import MasktaxError
from masktax.lmeval.model import MasktaxLM

pytestmark = pytest.mark.usefixtures("one_thread")


def ll_requests(pairs):
    return [Instance(request_type="loglikelihood", doc={}, arguments=(c, t), idx=i) for i, (c, t) in enumerate(pairs)]


@pytest.fixture(scope="module")
def ar_pair(tiny_ckpts):
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=tiny_ckpts["ar"], device="cpu", dtype="float32", batch_size=2)
    ours = MasktaxLM(model=tiny_ckpts["ar"], device="cpu", batch_size=3)
    return hf, ours


@pytest.fixture(scope="module")
def llada_lm(tiny_ckpts):
    return MasktaxLM(model=tiny_ckpts["llada"], device="cpu", batch_size=8, mc_num=8)


def test_registered_under_masktax():
    assert get_model("masktax") is MasktaxLM


def test_ar_loglikelihood_equals_lm_eval_hf(ar_pair):
    hf, ours = ar_pair
    pairs = [(d["context"], d["target"]) for d in LL_DOCS] + [("", "cat dog"), ("Alice ", "and Bob")]
    expected = hf.loglikelihood(ll_requests(pairs))
    got = ours.loglikelihood(ll_requests(pairs))
    for (e, eg), (g, gg) in zip(expected, got, strict=True):
        assert g == pytest.approx(e, abs=1e-5)
        assert gg == eg


def test_ar_rolling_equals_lm_eval_hf(ar_pair):
    hf, ours = ar_pair
    reqs = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(d["text"],), idx=i)
            for i, d in enumerate(ROLL_DOCS)]
    for e, g in zip(hf.loglikelihood_rolling(reqs), ours.loglikelihood_rolling(reqs), strict=True):
        assert g == pytest.approx(e, abs=1e-4)


def test_ar_task_results_equal_lm_eval_hf(ar_pair, tiny_task_manager):
    hf, ours = ar_pair
    kw = {"tasks": ["tiny_ll", "tiny_mc"], "task_manager": tiny_task_manager, "log_samples": False, "bootstrap_iters": 0}
    expected = lm_eval.simple_evaluate(model=hf, **kw)["results"]
    got = lm_eval.simple_evaluate(model=ours, **kw)["results"]
    for task in ("tiny_ll", "tiny_mc"):
        for key, value in expected[task].items():
            if isinstance(value, float):
                assert got[task][key] == pytest.approx(value, rel=1e-5), (task, key)


def test_extra_masks_on_a_causal_model_is_one_line(ar_pair):
    _, ours = ar_pair
    ours.set_extra_masks(3)
    try:
        with pytest.raises(MasktaxError, match="needs a masked diffusion model") as err:
            ours.loglikelihood(ll_requests([("Alice", " Bob")]))
        assert "\n" not in str(err.value)
    finally:
        ours.set_extra_masks(0)


def test_mdlm_requests_rolling_and_extra_masks(llada_lm):
    reqs = ll_requests([(d["context"], d["target"]) for d in LL_DOCS])
    first = llada_lm.loglikelihood(reqs)
    assert first == llada_lm.loglikelihood(reqs)  # seeded: a rerun gives the same numbers
    assert all(ll < 0 and isinstance(g, bool) for ll, g in first)
    llada_lm.set_extra_masks(16)
    try:
        masked = llada_lm.loglikelihood(reqs)
    finally:
        llada_lm.set_extra_masks(0)
    assert [round(a, 6) for a, _ in masked] != [round(a, 6) for a, _ in first]
    rolling = llada_lm.loglikelihood_rolling(
        [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(d["text"],), idx=0) for d in ROLL_DOCS])
    assert len(rolling) == 2 and all(r < 0 for r in rolling)


def test_generate_until_honours_stops_and_batching(llada_lm):
    reqs = [Instance(request_type="generate_until", doc={}, idx=i,
                     arguments=(ctx, {"until": ["cat", "\n"], "max_gen_toks": 8}))
            for i, ctx in enumerate(["Alice and Bob", "Options : ( A ) cat", "France Japan Peru red blue"])]
    batched = llada_lm.generate_until(reqs)
    alone = [llada_lm.generate_until([r])[0] for r in reqs]
    assert batched == alone
    assert all("cat" not in t and "\n" not in t for t in batched)
    llada_lm.set_extra_masks(8)  # a 16-position canvas
    try:
        assert len(llada_lm.generate_until(reqs[:1])) == 1
    finally:
        llada_lm.set_extra_masks(0)


def test_chat_template_and_tokenizer_name(llada_lm):
    text = llada_lm.apply_chat_template([{"role": "user", "content": "Alice"}])
    assert text.startswith("<|user|>") and text.rstrip().endswith("<|assistant|>")
    prefilled = llada_lm.apply_chat_template(
        [{"role": "user", "content": "Alice"}, {"role": "assistant", "content": "Bob"}], add_generation_prompt=False)
    assert prefilled.rstrip().endswith("Bob")
    assert "/" not in llada_lm.tokenizer_name and llada_lm.chat_template()


@pytest.mark.parametrize("args,match", [
    ("", "needs model=NAME"),
    ("model=embedded-mdlm,mc_nun=4", "unknown model_args mc_nun"),
    ("model=embedded-mdlm,mc_num=0", "mc_num must be at least 1"),
    ("model=embedded-mdlm,mc_num=many", "mc_num='many' is not a valid int"),
    ("model=embedded-mdlm,sampler=beam", "sampler 'beam' is unknown"),
    ("model=embedded-mdlm,sampler=block,steps=8", "give steps_per_block, not steps"),
    ("model=embedded-mdlm,greedy=maybe", "greedy='maybe' is not a valid bool"),
    ("model=embedded-mdlm,extra_masks=-1", "extra_masks must be >= 0"),
    ("model=/no/such/dir", "/no/such/dir"),
])
def test_bad_model_args_are_one_line(args, match):
    with pytest.raises(MasktaxError, match=match) as err:
        MasktaxLM.create_from_arg_string(args, {"batch_size": None, "device": "cpu"})
    assert "\n" not in str(err.value)


def test_uniform_noise_models_say_what_they_cannot_do(llada_lm):
    from dataclasses import replace

    uniform = MasktaxLM(lm=replace(llada_lm.lm, kind="uniform", mask_id=None), device="cpu")
    for call, req in ((uniform.loglikelihood, ll_requests([("Alice", " Bob")])),
                      (uniform.generate_until, [Instance(request_type="generate_until", doc={}, idx=0,
                                                         arguments=("Alice", {"until": ["."]}))])):
        with pytest.raises(MasktaxError, match="uniform-noise") as err:
            call(req)
        assert "\n" not in str(err.value)


@pytest.mark.slow  # lm-eval's command line indexes its own task library first (about 25 s here)
def test_module_command_line_runs_and_reports_bad_model_args(tiny_ckpts, tiny_tasks, capsys):
    from masktax.lmeval.__main__ import main

    base = ["run", "--model", "masktax", "--tasks", "tiny_ll", "--include_path", str(tiny_tasks), "--device", "cpu"]
    assert main([*base, "--model_args", f"model={tiny_ckpts['llada']},mc_num=4"]) == 0
    assert "tiny_ll" in capsys.readouterr().out
    assert main([*base, "--model_args", f"model={tiny_ckpts['llada']},mc_num=zero"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("masktax: error: model_args mc_num='zero'")
