"""The samplers' vocabulary head runs on the generated region only, and decodes exactly as the full head.

`DecodeState.logits` asks for the logits of positions lp..l-1 (`LoadedModel.logits_from`: the native
families' 2-D `logits_to_keep`; a shifted model's raw rows lp-1..l-2). Forcing the fallback
(`extra["logits_to_keep"] = False`: full logits, sliced, the cost of the former full head) must give
the same tokens and the same history, with every cache, soft-masking and classifier-free guidance.
Bit for bit, as long as the head runs on enough rows that the matmul takes the full head's kernel (a
region of a handful of rows may round differently in the last bits: the last test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import tiny_dream, tiny_llada, tiny_llama_ar, tiny_mask_id, tiny_tokenizer

from masktax.models import load
from masktax.models.loaded import LoadedModel
from masktax.samplers import SoftMaskConfig, generate_dream, generate_semi_ar, generate_threshold
from masktax.samplers.block_diffusion import generate_block

MASK = tiny_mask_id()
GEN = 12

pytestmark = pytest.mark.usefixtures("one_thread")


def _lm(family: str) -> LoadedModel:
    tok = tiny_tokenizer()
    build = {"llada": tiny_llada, "dream": tiny_dream, "llama": tiny_llama_ar}[family]
    return LoadedModel(name=family, model=build(seed=3).eval(), tokenizer=tok, kind="mdlm", mask_id=MASK,
                       shift=family != "llada", max_length=4096, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)


def _prompts(b: int = 3, n: int = 17) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, 40, (b, n), generator=torch.Generator().manual_seed(4))  # [b, n]
    am = torch.ones_like(ids)
    ids[1, :5], am[1, :5] = 0, 0  # a left-padded row
    return ids, am


def _decode(lm: LoadedModel, sampler: str, full_head: bool, heads: list[int], **kw):
    """One decode with the region head, or with the full head (the fallback forced); `heads` collects the rows
    each forward's vocabulary head ran on."""
    lm.extra["logits_to_keep"] = not full_head
    hook = lm.model.register_forward_hook(lambda m, a, out: heads.append(out.logits.shape[1]))
    ids, am = _prompts()
    try:
        if sampler == "semi_ar":
            return generate_semi_ar(lm, ids, steps=6, gen_length=GEN, block_length=4, attention_mask=am,
                                    return_history=True, generator=torch.Generator().manual_seed(0), **kw)
        if sampler == "threshold":
            return generate_threshold(lm, ids, gen_length=GEN, block_length=6, threshold=0.3, attention_mask=am,
                                      return_history=True, **kw)
        return generate_dream(lm, ids, steps=5, gen_length=GEN, attention_mask=am, return_history=True,
                              generator=torch.Generator().manual_seed(0), **kw)
    finally:
        hook.remove()
        lm.extra.pop("logits_to_keep", None)


def _assert_same(a, b) -> None:
    (xa, ha), (xb, hb) = a, b
    assert torch.equal(xa, xb)
    assert ha.forward_passes == hb.forward_passes and ha.num_steps == hb.num_steps
    for sa, sb in zip(ha.steps, hb.steps, strict=True):
        assert torch.equal(sa.committed, sb.committed) and torch.equal(sa.tokens, sb.tokens)
        torch.testing.assert_close(sa.confidence, sb.confidence, rtol=0, atol=0, equal_nan=True)


SOFT = SoftMaskConfig(omega_s=0.5, fraction=1.0)
CASES = [
    ("semi_ar", {}),
    ("semi_ar", {"soft_mask": SOFT}),
    ("semi_ar", {"cfg_scale": 1.5}),
    ("semi_ar", {"cfg_scale": 1.0, "soft_mask": SOFT, "temperature": 0.7}),
    ("threshold", {"soft_mask": SOFT}),
    ("dream", {"soft_mask": SOFT}),
    ("dream", {"temperature": 0.8, "top_p": 0.9}),
]


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("sampler,kw", CASES, ids=[f"{s}-{'-'.join(k) or 'plain'}" for s, k in CASES])
def test_region_head_decodes_as_the_full_head(family, cache, sampler, kw):
    lm = _lm(family)
    total = _prompts()[0].shape[1] + GEN
    region_heads: list[int] = []
    full_heads: list[int] = []
    region = _decode(lm, sampler, False, region_heads, cache=cache, **kw)
    full = _decode(lm, sampler, True, full_heads, cache=cache, **kw)
    _assert_same(region, full)
    # Not vacuous: every full forward ran the head on the whole sequence before, on the region now.
    assert total in full_heads and total not in region_heads
    assert [GEN if n == total else n for n in full_heads] == region_heads


class IgnoresKeep(torch.nn.Module):
    """A forward that takes `logits_to_keep` and ignores it (full logits `[b, l, V]`), or lacks it (`accepts`)."""

    def __init__(self, inner, accepts: bool = True):
        super().__init__()
        self.inner, self.accepts = inner, accepts

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, **kwargs):
        if not self.accepts and kwargs:
            raise TypeError(f"forward() got an unexpected keyword argument {next(iter(kwargs))!r}")
        return self.inner(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask)


@pytest.mark.parametrize("family", ["llada", "llama"])
def test_a_model_that_ignores_the_2d_form_falls_back_to_the_full_logits(family):
    """A forward that ignores (or lacks) the 2-D `logits_to_keep`: the lm notices, remembers it and slices the
    full logits; the decode is the full head's. A transformers model (Llama, shifted) keeps the region head."""
    lm = _lm(family)
    full = _decode(lm, "semi_ar", True, [], soft_mask=SOFT, cfg_scale=1.0)
    heads: list[int] = []
    _assert_same(_decode(lm, "semi_ar", False, heads, soft_mask=SOFT, cfg_scale=1.0), full)
    assert set(heads) == {GEN}
    for accepts in (True, False):
        wrapped = LoadedModel(name="wrapped", model=IgnoresKeep(lm.model, accepts), tokenizer=None, kind="mdlm",
                              mask_id=MASK, shift=lm.shift, max_length=4096)
        ids, am = _prompts()
        out = generate_semi_ar(wrapped, ids, steps=6, gen_length=GEN, block_length=4, attention_mask=am,
                               return_history=True, generator=torch.Generator().manual_seed(0), soft_mask=SOFT,
                               cfg_scale=1.0)
        assert wrapped.extra["logits_to_keep"] is False
        _assert_same(out, full)


def test_a_bare_module_gets_the_region_head_too():
    """A bare module (no LoadedModel; `shift=True` for Dream) takes the 2-D form as well; one whose forward has
    no `logits_to_keep` falls back."""
    lm, ids = _lm("dream"), _prompts()[0]
    heads: list[int] = []
    lm.model.register_forward_hook(lambda m, a, out: heads.append(out.logits.shape[1]))
    bare = generate_dream(lm.model, ids, steps=4, gen_length=GEN, mask_id=MASK, shift=True)
    assert set(heads) == {GEN}
    assert torch.equal(bare, generate_dream(lm, ids, steps=4, gen_length=GEN))

    heads.clear()
    plain = generate_dream(IgnoresKeep(lm.model, accepts=False), ids, steps=4, gen_length=GEN, mask_id=MASK, shift=True)
    assert torch.equal(plain, bare) and set(heads) == {ids.shape[1] + GEN}


@pytest.mark.parametrize("name,kw", [("sdar", {}), ("fast_dllm_v2", {"sub_block_size": 4, "threshold": 0.15}),
                                     ("llada2_moe", {"edit_threshold": 0.1, "threshold": 0.3})])
def test_the_block_sampler_without_a_cache_runs_the_head_on_its_window(name, kw):
    """`generate_block` without a cache runs [0, block end) and reads the block: the head runs on the block only,
    with the full head's decode."""
    lm = load(Path(__file__).parents[1] / "models" / "fixtures" / name, device="cpu")
    prompt = torch.randint(3, 64, (2, 11), generator=torch.Generator().manual_seed(5))
    runs, heads = [], []
    hook = lm.model.register_forward_hook(lambda m, a, out: heads.append(out.logits.shape[1]))
    try:
        for full_head in (False, True):
            lm.extra["logits_to_keep"] = not full_head
            runs.append(generate_block(lm, prompt, gen_length=13, mask_id=2, return_history=True,
                                       soft_mask=SOFT, **kw))
            if not full_head:
                region, heads[:] = list(heads), []
    finally:
        hook.remove()
    _assert_same(*runs)
    # each forward's head ran on the block (or, Fast-dLLM v2's first-token forward, as before): fewer rows than before
    assert all(r in (lm.block_size, h) for r, h in zip(region, heads, strict=True)) and sum(region) < sum(heads)


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("gen", [1, 2, 3, 5])
def test_a_region_of_a_few_rows_decodes_the_same_tokens(family, gen):
    """A head of very few rows (one row, a few masks) may take another matmul kernel than the full head, whose
    rounding differs in the last bits (seen on this CPU below 12 rows): the same tokens, confidences within 1e-6."""
    lm = _lm(family)
    ids = _prompts()[0][:1]  # [1, n]
    runs = []
    for full_head in (False, True):
        lm.extra["logits_to_keep"] = not full_head
        runs.append(generate_semi_ar(lm, ids, steps=gen, gen_length=gen, block_length=gen, return_history=True))
    (xa, ha), (xb, hb) = runs
    assert torch.equal(xa, xb) and ha.forward_passes == hb.forward_passes
    for sa, sb in zip(ha.steps, hb.steps, strict=True):
        assert torch.equal(sa.committed, sb.committed) and torch.equal(sa.tokens, sb.tokens)
        torch.testing.assert_close(sa.confidence, sb.confidence, rtol=0, atol=1e-6, equal_nan=True)
