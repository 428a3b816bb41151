"""Native LLaDA and Dream against an independent re-implementation, padding, shift, save/load."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from tiny import save_tiny_checkpoint, tiny_dream, tiny_llada, tiny_tokenizer

from masktax.models import load
from masktax.models.dream import DreamModel
from masktax.models.llada import LLaDAModelLM

# ---------------------------------------------------------------------------------------------
# Reference: plain float64 loops over heads and positions, reading tensors by PUBLISHED names.


def _rms(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def _rope(x, theta):
    """x [l, hd]; rotate pair (i, i + hd/2) of position p by p * theta^(-2i/hd)."""
    n, hd = x.shape
    half = hd // 2
    out = torch.empty_like(x)
    for p in range(n):
        for i in range(half):
            ang = p * theta ** (-2 * i / hd)
            c, s = math.cos(ang), math.sin(ang)
            a, b = x[p, i], x[p, i + half]
            out[p, i] = a * c - b * s
            out[p, i + half] = b * c + a * s
    return out


def _attend(xn, wq, wk, wv, wo, bq, bk, bv, n_heads, n_kv, theta):
    d = xn.shape[1]
    hd = d // n_heads
    q, k, v = xn @ wq.T, xn @ wk.T, xn @ wv.T
    if bq is not None:
        q, k, v = q + bq, k + bk, v + bv
    heads = []
    for h in range(n_heads):
        g = h // (n_heads // n_kv)
        qh = _rope(q[:, h * hd:(h + 1) * hd], theta)
        kh = _rope(k[:, g * hd:(g + 1) * hd], theta)
        vh = v[:, g * hd:(g + 1) * hd]
        scores = qh @ kh.T / math.sqrt(hd)  # every position sees every position
        heads.append(torch.softmax(scores, dim=-1) @ vh)
    return torch.cat(heads, dim=-1) @ wo.T


def _mlp(x, gate, up, down):
    g = x @ gate.T
    return (g * torch.sigmoid(g) * (x @ up.T)) @ down.T


def reference_llada(sd, cfg, ids):
    w = {k: v.double() for k, v in sd.items()}
    p, eps = "model.transformer.", cfg["rms_norm_eps"]
    x = w[p + "wte.weight"][ids]
    for n in range(cfg["n_layers"]):
        b = f"{p}blocks.{n}."
        xn = _rms(x, w[b + "attn_norm.weight"], eps)
        x = x + _attend(xn, w[b + "q_proj.weight"], w[b + "k_proj.weight"], w[b + "v_proj.weight"],
                        w[b + "attn_out.weight"], None, None, None, cfg["n_heads"], cfg["n_kv_heads"],
                        cfg["rope_theta"])
        x = x + _mlp(_rms(x, w[b + "ff_norm.weight"], eps), w[b + "ff_proj.weight"], w[b + "up_proj.weight"],
                     w[b + "ff_out.weight"])
    return _rms(x, w[p + "ln_f.weight"], eps) @ w[p + "ff_out.weight"].T


def reference_dream(sd, cfg, ids):
    w = {k: v.double() for k, v in sd.items()}
    eps = cfg["rms_norm_eps"]
    x = w["model.embed_tokens.weight"][ids]
    for n in range(cfg["num_hidden_layers"]):
        b, a = f"model.layers.{n}.", f"model.layers.{n}.self_attn."
        xn = _rms(x, w[b + "input_layernorm.weight"], eps)
        x = x + _attend(xn, w[a + "q_proj.weight"], w[a + "k_proj.weight"], w[a + "v_proj.weight"],
                        w[a + "o_proj.weight"], w[a + "q_proj.bias"], w[a + "k_proj.bias"], w[a + "v_proj.bias"],
                        cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rope_theta"])
        m = b + "mlp."
        x = x + _mlp(_rms(x, w[b + "post_attention_layernorm.weight"], eps), w[m + "gate_proj.weight"],
                     w[m + "up_proj.weight"], w[m + "down_proj.weight"])
    return _rms(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


# ---------------------------------------------------------------------------------------------

IDS = torch.tensor([[5, 17, 300, 2, 2, 41, 999, 8], [7, 7, 2, 120, 64, 3, 2, 11]])


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return save_tiny_checkpoint(tiny_llada(seed=1), tiny_tokenizer(), tmp_path_factory.mktemp("llada"))


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory):
    return save_tiny_checkpoint(tiny_dream(seed=2), tiny_tokenizer(), tmp_path_factory.mktemp("dream"))


def test_published_parameter_names(llada_dir, dream_dir):
    llada = set(load_file(str(llada_dir / "model.safetensors")))
    assert {"model.transformer.wte.weight", "model.transformer.ln_f.weight", "model.transformer.ff_out.weight",
            *(f"model.transformer.blocks.1.{n}.weight" for n in
              ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out", "attn_norm", "ff_norm"))
            } == {k for k in llada if k.startswith("model.transformer.") and ".blocks.0." not in k}
    dream = set(load_file(str(dream_dir / "model.safetensors")))
    assert "model.layers.1.self_attn.q_proj.bias" in dream and "model.layers.0.self_attn.o_proj.bias" not in dream
    assert {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
            "model.layers.0.mlp.gate_proj.weight", "model.layers.0.post_attention_layernorm.weight"} <= dream
    assert json.loads((llada_dir / "config.json").read_text())["model_type"] == "llada"
    assert json.loads((dream_dir / "config.json").read_text())["model_type"] == "Dream"


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_loaded_logits_match_reference(family, llada_dir, dream_dir):
    path = llada_dir if family == "llada" else dream_dir
    cfg = json.loads((path / "config.json").read_text())
    sd = load_file(str(path / "model.safetensors"))
    ref_fn = reference_llada if family == "llada" else reference_dream
    lm = load(path, device="cpu")
    raw = lm.model(input_ids=IDS).logits
    for row in range(IDS.shape[0]):
        ref = ref_fn(sd, cfg, IDS[row])
        torch.testing.assert_close(raw[row].double(), ref, atol=2e-4, rtol=1e-4)


def test_adapter_kinds_and_shift(llada_dir, dream_dir):
    llada, dream = load(llada_dir), load(dream_dir)
    tok = tiny_tokenizer()
    assert (llada.kind, llada.shift, llada.mask_id) == ("mdlm", False, tok.mask_token_id)
    assert (dream.kind, dream.shift, dream.mask_id) == ("mdlm", True, tok.mask_token_id)
    assert isinstance(llada.model, LLaDAModelLM) and isinstance(dream.model, DreamModel)
    assert not llada.model.training and llada.max_length == 4096 and llada.eos_id == tok.eos_token_id
    with torch.no_grad():
        raw = dream.model(input_ids=IDS).logits
        aligned = dream.logits(IDS)
        torch.testing.assert_close(aligned[:, 1:], raw[:, :-1])
        torch.testing.assert_close(llada.logits(IDS), llada.model(input_ids=IDS).logits)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_logits_from_embeds_equal_logits(family, llada_dir, dream_dir):
    lm = load(llada_dir if family == "llada" else dream_dir)
    with torch.no_grad():
        torch.testing.assert_close(lm.logits_from_embeds(lm.embed(IDS)), lm.logits(IDS))
    assert lm.embedding_weight().shape == (len(tiny_tokenizer()), 32)


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padding(family, side):
    model = tiny_llada(seed=3) if family == "llada" else tiny_dream(seed=3)
    short, full = torch.tensor([4, 9, 200, 33, 2]), torch.tensor([8, 1, 15, 6, 70, 2, 2, 5])
    pad = torch.full((3,), 1)
    padded = torch.cat([pad, short]) if side == "left" else torch.cat([short, pad])
    batch = torch.stack([padded, full])  # [2, 8]
    mask = torch.ones_like(batch)
    if side == "left":
        mask[0, :3] = 0
    else:
        mask[0, 5:] = 0
    with torch.no_grad():
        out = model(input_ids=batch, attention_mask=mask).logits
        alone_short = model(input_ids=short[None]).logits[0]
        alone_full = model(input_ids=full[None]).logits[0]
        keep = mask[0].bool()
        torch.testing.assert_close(out[0, keep], alone_short, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1], alone_full, atol=1e-5, rtol=1e-5)
        # the mask matters: without it the padded row changes
        assert not torch.allclose(model(input_ids=batch).logits[0, keep], alone_short, atol=1e-3)


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_save_pretrained_round_trip_and_shards(family, tmp_path):
    model = tiny_llada(seed=4) if family == "llada" else tiny_dream(seed=4)
    cls = type(model)
    model.save_pretrained(tmp_path / "one")
    model.save_pretrained(tmp_path / "sharded", max_shard_bytes=40_000)
    assert len(list((tmp_path / "sharded").glob("model-*-of-*.safetensors"))) > 1
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    with torch.no_grad():
        want = model(input_ids=IDS).logits
        for sub in ("one", "sharded"):
            again = cls.from_pretrained(tmp_path / sub)
            torch.testing.assert_close(again(input_ids=IDS).logits, want, atol=0, rtol=0)
    again.save_pretrained(tmp_path / "two")
    assert json.loads((tmp_path / "one" / "config.json").read_text()) == json.loads(
        (tmp_path / "two" / "config.json").read_text())
    first, second = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(
        str(tmp_path / "two" / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_tied_dream_and_llada(tmp_path):
    dream = tiny_dream(seed=5, tie_word_embeddings=True)
    llada = tiny_llada(seed=5, weight_tying=True)
    for i, model in enumerate((dream, llada)):
        model.save_pretrained(tmp_path / str(i))
        names = load_file(str(tmp_path / str(i) / "model.safetensors"))
        assert "lm_head.weight" not in names and "model.transformer.ff_out.weight" not in names
        again = type(model).from_pretrained(tmp_path / str(i))
        assert again.get_output_embeddings().weight is again.get_input_embeddings().weight or i == 1
        with torch.no_grad():
            torch.testing.assert_close(again(input_ids=IDS).logits, model(input_ids=IDS).logits)


def test_seeded_init():
    assert torch.equal(tiny_llada(seed=7).model.transformer["wte"].weight,
                       tiny_llada(seed=7).model.transformer["wte"].weight)
    assert not torch.equal(tiny_dream(seed=7).lm_head.weight, tiny_dream(seed=8).lm_head.weight)


def test_bf16_dtype(llada_dir):
    lm = load(llada_dir, dtype="bf16")
    assert lm.dtype == torch.bfloat16
    with torch.no_grad():
        ref = load(llada_dir).logits(IDS)
        got = lm.logits(IDS).float()
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() > 0.8


@pytest.mark.parametrize("family", ["llada", "dream", "ar"])
def test_logits_at_equals_full_logits_at_those_positions(family):
    """`LoadedModel.logits_at` (head only at the kept rows) equals gathering the full aligned logits."""
    from tiny import tiny_dream, tiny_llada, tiny_llama_ar, tiny_tokenizer

    from masktax.models.loaded import LoadedModel

    tok = tiny_tokenizer()
    model = {"llada": tiny_llada, "dream": tiny_dream, "ar": tiny_llama_ar}[family](0)
    a = LoadedModel(name=family, model=model.eval(), tokenizer=tok, kind="ar" if family == "ar" else "mdlm",
                mask_id=tok.mask_token_id, shift=family != "llada", max_length=512,
                pad_id=tok.pad_token_id, extra={"position_ids": family == "ar"})
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(tok) - 5, (3, 17), generator=g)  # [b, l]
    am = torch.ones_like(ids)
    am[1, 12:] = 0
    pos = torch.tensor([16, 0, 11])
    with torch.no_grad():
        want = a.logits(ids, am)[torch.arange(3), pos]  # [b, V]
        got = a.logits_at(ids, pos, am)  # [b, V]
        from_embeds = a.logits_at(None, pos, am, embeds=a.embed(ids))  # [b, V]
    assert a.extra.get("logits_to_keep", True), "the fast path was not taken"
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(from_embeds, want, rtol=1e-5, atol=1e-5)
