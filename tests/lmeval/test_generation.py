"""lm-eval's generate_until with `sampler=block` on block-causal models (tiny LLaDA2 and SDAR): prompts of
one length batched unpadded, others alone; each text equals the block sampler run on that prompt by itself."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from tiny import tiny_family_checkpoint

from masktax.errors import MasktaxError
from masktax.lmeval.generation import cut_at_stops
from masktax.lmeval.model import MasktaxLM
from masktax.models import load
from masktax.samplers import decode
from masktax.samplers.block_diffusion import generate_block

pytestmark = pytest.mark.usefixtures("one_thread")

CONTEXTS = ("Alice Bob", "cat dog apple", "red blue", "France Japan Peru Garden", "Carol table", "run jump")
GEN = 7  # not a whole number of blocks: the sampler decodes whole blocks and cuts


def requests(until: list[str]) -> list[Instance]:
    return [Instance(request_type="generate_until", doc={}, idx=i, arguments=(c, {"until": until, "max_gen_toks": GEN}))
            for i, c in enumerate(CONTEXTS)]


def direct(lm, context: str, until: list[str], **kwargs) -> str:
    """The block sampler on one prompt, decoded and cut as lm-eval's path does."""
    ids = torch.tensor([lm.tokenizer.encode(context)])  # [1, P]
    with torch.no_grad():
        seqs = generate_block(lm, ids, gen_length=GEN, **kwargs)  # [1, P + GEN]
    return cut_at_stops(decode(lm.tokenizer, seqs, ids.shape[1], stop_at_eos=True, eos_ids=[lm.eos_id])[0], until)


@pytest.mark.parametrize("family", ["llada2_moe", "sdar"])
def test_block_sampler_through_lm_eval_equals_a_direct_call(family, tmp_path):
    lm = load(tiny_family_checkpoint(family, tmp_path / family), device="cpu")
    assert lm.block_size in (4, 8)
    lengths = [len(lm.tokenizer.encode(c)) for c in CONTEXTS]
    assert len(set(lengths)) < len(lengths) and len(set(lengths)) > 1  # some batched together, some not
    for until in ([], ["dog"]):
        got = MasktaxLM(lm=lm, sampler="block", batch_size=4, device="cpu").generate_until(requests(until))
        assert got == [direct(lm, c, until) for c in CONTEXTS]
        assert any(got)
    tuned = MasktaxLM(lm=lm, sampler="block", steps_per_block=2, threshold=0.5, batch_size=4, device="cpu")
    got = tuned.generate_until(requests([]))
    assert got == [direct(lm, c, [], steps_per_block=2, threshold=0.5) for c in CONTEXTS]


def test_block_sampler_needs_a_block_causal_model(tiny_ckpts):
    bidirectional = MasktaxLM(model=tiny_ckpts["llada"], sampler="block", device="cpu")
    with pytest.raises(MasktaxError, match="needs a block-causal model") as err:
        bidirectional.generate_until(requests([])[:1])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("args", "match"), [
    ({"sampler": "block", "steps": 4}, "give steps_per_block, not steps or block_length"),
    ({"sampler": "block", "block_length": 4}, "give steps_per_block, not steps or block_length"),
    ({"steps_per_block": 4}, "steps_per_block is for sampler=block"),
])
def test_block_sampler_args(tiny_ckpts, args, match):
    with pytest.raises(MasktaxError, match=match):
        MasktaxLM(model=tiny_ckpts["llada"], device="cpu", **args)
