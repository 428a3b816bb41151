"""Write tests/models/fixtures/<family>/: tiny random checkpoints made by each family's PUBLISHED code, and its logits.

Each fixture is what the published modeling code saves (`config.json` + `model.safetensors`, by
`save_pretrained`) for a tiny random model (2 layers, hidden 32, vocabulary 64, a few experts,
seeded), plus `reference.safetensors`: `input_ids [2, L]`, `attention_mask [2, L]` (row 1 right
padded) and the published forward's `logits [2, L, V]` in fp32. `tests/models/test_families.py`
checks that `masktax.models.load(fixture)` gives the same logits.

The published code is remote code for transformers 4.x, so it runs here in a throwaway virtual
environment, never in masktax's: nothing below is imported by masktax. Sources, read from git
snapshots of the public repositories (no model hub is contacted):

    lladamoe    ZHZisZZ/dllm  dllm/pipelines/llada/models/{configuration,modeling}_lladamoe.py
    llada2_moe  ZHZisZZ/dllm  dllm/pipelines/llada2/models/{configuration,modeling}_llada2_moe.py
    mmada       Gen-Verse/MMaDA  models/{configuration_llada,modeling_llada,modeling_mmada,sampling}.py
    sdar        Gen-Verse/dLLM-RL  models/sdar/{configuration,modeling}_sdar.py
    fast_dllm_v2  Satgoy152/DualDiffusion @ d3a3470  FastDLLM_inferencing/Fast_dLLM_v2_7B/{configuration,modeling}.py
                  (a copy of the Hub repository Efficient-Large-Model/Fast_dLLM_v2_7B; NVlabs/Fast-dLLM's
                  own v2/ is not in the snapshot available when this was written; the copy's later
                  commits change only `generate`, so the first one is used)
    sdar_moe    Xenearkr/DARE @ fd704cf  models/SDAR-30B-A3B-Chat/{configuration,modeling}_sdar_moe.py
                  (a copy of the Hub repository JetLM/SDAR-30B-A3B-Chat, whose code is not in JetAstra/SDAR;
                  the copy makes `LossKwargs` optional and adds nothing to the forward pass)

Two shims let SDAR's (and SDAR-MoE's) file import on a CPU machine with transformers 4.57, neither touching the
arithmetic: `flash_attn.ops.triton.layer_norm.rms_norm_fn` (a CUDA Triton kernel it imports at the
top) is replaced by the plain-PyTorch RMSNorm the same file keeps commented out below its call
(identical in fp32), and `transformers.utils.LossKwargs` (a typing-only base of its kwargs, renamed
`TransformersKwargs` in transformers 4.5x) is aliased.

The commands that made the committed fixtures (2 CPU cores, under a minute):

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -c constraints.txt torch==2.13.0 'transformers==4.57.*' safetensors pillow numpy
    git clone https://github.com/ZHZisZZ/dllm /tmp/dllm            # or any checkout of these repositories
    git clone https://github.com/Gen-Verse/MMaDA /tmp/MMaDA
    git clone https://github.com/Gen-Verse/dLLM-RL /tmp/dLLM-RL
    git clone https://github.com/Satgoy152/DualDiffusion /tmp/DualDiffusion
    git clone https://github.com/Xenearkr/DARE /tmp/DARE
    /tmp/refvenv/bin/pip install -c constraints.txt einops    # imported by the Fast-dLLM v2 file
    /tmp/refvenv/bin/python scripts/make_family_fixtures.py --dllm /tmp/dllm --mmada /tmp/MMaDA \
        --dllm-rl /tmp/dLLM-RL --dualdiffusion /tmp/DualDiffusion --dare /tmp/DARE

`--dllm` / `--mmada` / `--dllm-rl` / `--dualdiffusion` / `--dare` take a work tree or a bare git directory (files are read with `git show
REV:path`, REV from `--rev`, default HEAD, d3a3470 for DualDiffusion and fd704cf for DARE); the commit of each source is written to
`tests/models/fixtures/SOURCES.json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "models" / "fixtures"
VOCAB, LENGTH, PAD_FROM = 64, 20, 15  # row 1 holds PAD_FROM real tokens, then padding

SOURCES = {
    "dllm": {
        "lladamoe": ["dllm/pipelines/llada/models/configuration_lladamoe.py",
                     "dllm/pipelines/llada/models/modeling_lladamoe.py"],
        "llada2": ["dllm/pipelines/llada2/models/configuration_llada2_moe.py",
                   "dllm/pipelines/llada2/models/modeling_llada2_moe.py"],
    },
    "mmada": {
        "mmada": ["models/configuration_llada.py", "models/modeling_llada.py", "models/modeling_mmada.py",
                  "models/sampling.py"],
    },
    "dllm_rl": {
        "sdar": ["models/sdar/configuration_sdar.py", "models/sdar/modeling_sdar.py"],
    },
    "dualdiffusion": {
        "fastdllm": ["FastDLLM_inferencing/Fast_dLLM_v2_7B/configuration.py",
                     "FastDLLM_inferencing/Fast_dLLM_v2_7B/modeling.py"],
    },
    "dare": {
        "sdar_moe": ["models/SDAR-30B-A3B-Chat/configuration_sdar_moe.py",
                     "models/SDAR-30B-A3B-Chat/modeling_sdar_moe.py"],
    },
}
DUALDIFFUSION_REV = "d3a3470094c767d8b4d6fa92a2704a7feec4e64c"
DARE_REV = "fd704cf94a3846025329898d41154b37ebfbb045"  # the commit that added the SDAR-30B-A3B-Chat files
PINNED_REVS = {"dualdiffusion": DUALDIFFUSION_REV, "dare": DARE_REV}


def shim_for_sdar(into: Path) -> None:
    """See the module docstring: a plain RMSNorm for flash_attn's Triton one, and LossKwargs' old name."""
    import transformers.utils

    transformers.utils.LossKwargs = transformers.utils.TransformersKwargs
    pkg = into / "flash_attn" / "ops" / "triton"
    pkg.mkdir(parents=True, exist_ok=True)
    for d in (into / "flash_attn", into / "flash_attn" / "ops", pkg):
        (d / "__init__.py").write_text("")
    (pkg / "layer_norm.py").write_text(
        "import torch\n\n"
        "def rms_norm_fn(x, weight, bias=None, eps=1e-6):\n"
        "    dtype = x.dtype\n"
        "    h = x.to(torch.float32)\n"
        "    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)\n"
        "    return weight * h.to(dtype)\n"
    )


def git_show(repo: Path, rev: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def git_commit(repo: Path, rev: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", rev], check=True, capture_output=True,
                          text=True).stdout.strip()


def materialise(repo: Path, rev: str, package: str, files: list[str], into: Path) -> None:
    """Write the published files as package `into/package` (empty __init__, so their relative imports work)."""
    pkg = into / package
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    for f in files:
        (pkg / Path(f).name).write_text(git_show(repo, rev, f))


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter and buffer that is saved gets seeded random values far from the init
    defaults (norm weights 1 + N(0, 0.1^2), biases and expert biases N(0, 0.3^2), matrices
    N(0, 1/fan_in)), so a forward that drops or mis-reads any tensor shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if "inv_freq" in name or not t.is_floating_point():
                continue
            if t.dim() >= 2:
                t.copy_(torch.randn(t.shape, generator=g) * t.shape[-1] ** -0.5)
            elif "norm" in name or name.endswith("ln_f.weight"):
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            else:  # biases, expert biases
                t.copy_(0.3 * torch.randn(t.shape, generator=g))


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(2, VOCAB, (2, LENGTH), generator=g)  # [2, L]
    mask = torch.ones_like(ids)
    mask[1, PAD_FROM:] = 0
    ids[1, PAD_FROM:] = 1  # the pad id of the tiny configs
    return ids, mask


def block_causal(mask: torch.Tensor, block: int) -> torch.Tensor:
    """The published LLaDA2 samplers' mask (tril over blocks) AND key padding, boolean `[b, 1, L, L]`."""
    blk = torch.arange(mask.shape[1]) // block
    allowed = blk[None, :] <= blk[:, None]  # [L, L]
    return (allowed[None] & mask.bool()[:, None, :])[:, None]


def save(family: str, model: torch.nn.Module, logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> None:
    out = OUT / family
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    save_file({"input_ids": ids, "attention_mask": mask, "logits": logits.float().contiguous()},
              str(out / "reference.safetensors"))
    print(f"{family}: {sum(p.numel() for p in model.parameters())} parameters -> {out}")


def lladamoe(pkgs: str) -> None:
    from importlib import import_module

    conf = import_module(f"{pkgs}.configuration_lladamoe")
    modeling = import_module(f"{pkgs}.modeling_lladamoe")
    config = conf.LLaDAMoEConfig(
        vocab_size=VOCAB, hidden_size=32, dense_intermediate_size=48, expert_intermediate_size=16,
        shared_expert_intermediate_size=24, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        rope_theta=10000.0, partial_rotary_factor=0.5, attention_bias=True, qk_layernorm=True,
        num_experts=4, num_experts_per_tok=2, moe_layer_freq=[0, 1], moe_router_enable_expert_bias=True,
        moe_router_score_function="softmax", pad_token_id=1, eos_token_id=3, max_position_embeddings=256,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = modeling.LLaDAMoEModelLM(config).eval()
    randomize(model, 11)
    ids, mask = inputs()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits  # right padding: positions agree
    save("lladamoe", model, logits, ids, mask)


def llada2(pkgs: str) -> None:
    from importlib import import_module

    conf = import_module(f"{pkgs}.configuration_llada2_moe")
    modeling = import_module(f"{pkgs}.modeling_llada2_moe")
    config = conf.LLaDA2MoeConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, use_qkv_bias=True, use_qk_norm=True, use_bias=True, rope_theta=10000.0,
        partial_rotary_factor=0.5, num_experts=8, num_shared_experts=1, num_experts_per_tok=2, n_group=4,
        topk_group=2, routed_scaling_factor=2.5, moe_intermediate_size=16, first_k_dense_replace=1,
        pad_token_id=1, max_position_embeddings=256, block_size=8, attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    model = modeling.LLaDA2MoeModelLM(config).eval()
    randomize(model, 12)
    ids, mask = inputs()
    with torch.no_grad():  # the samplers' block-causal 4-D mask (blocks of 8) with the padding folded in
        logits = model(input_ids=ids, attention_mask=block_causal(mask, 8)).logits
    save("llada2_moe", model, logits, ids, mask)


def mmada(pkgs: str) -> None:
    from importlib import import_module

    conf = import_module(f"{pkgs}.configuration_llada")
    modeling = import_module(f"{pkgs}.modeling_mmada")
    fields = conf.ModelConfig(
        d_model=32, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=48, mlp_ratio=4,
        activation_type=conf.ActivationType.silu, block_type=conf.BlockType.llama, rope=True, rope_theta=10000.0,
        layer_norm_type=conf.LayerNormType.rms, rms_norm_eps=1e-5, max_sequence_length=256, include_bias=False,
        include_qkv_bias=False, vocab_size=VOCAB - 8, embedding_size=VOCAB, weight_tying=False, eos_token_id=3,
        pad_token_id=1, mask_token_id=2, attention_dropout=0.0, residual_dropout=0.0, embedding_dropout=0.0,
        init_device="cpu",
    ).__dict__
    config = modeling.MMadaConfig(**fields, llm_vocab_size=VOCAB - 8, new_vocab_size=VOCAB, codebook_size=8,
                                  num_vq_tokens=4, num_new_special_tokens=0, use_cache=False,
                                  architectures=["MMadaModelLM"])
    torch.manual_seed(0)
    model = modeling.MMadaModelLM(config).eval()
    randomize(model, 13)
    ids, mask = inputs()
    bias = (mask[:, :, None] & mask[:, None, :]).bool()[:, None]  # as MMaDA's own samplers mask padding
    with torch.no_grad():
        logits = model(input_ids=ids, attention_bias=bias).logits
    save("mmada", model, logits, ids, mask)


def sdar(pkgs: str) -> None:
    from importlib import import_module

    conf = import_module(f"{pkgs}.configuration_sdar")
    modeling = import_module(f"{pkgs}.modeling_sdar")
    config = conf.SDARConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=12, rope_theta=10000.0, attention_bias=True, rms_norm_eps=1e-6,
        max_position_embeddings=256, pad_token_id=1, tie_word_embeddings=False, fuse_cross_entropy=False,
        block_size=4, attn_implementation="sdpa",
    )
    save_block_causal("sdar", modeling.SDARForCausalLM, config, seed=14)


def fast_dllm_v2(pkgs: str) -> None:
    from importlib import import_module

    conf = import_module(f"{pkgs}.configuration")
    modeling = import_module(f"{pkgs}.modeling")
    config = conf.Fast_dLLM_QwenConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-6, max_position_embeddings=256, pad_token_id=1,
        tie_word_embeddings=False, bd_size=8, architectures=["Fast_dLLM_QwenForCausalLM"],
    )
    torch.manual_seed(0)
    model = modeling.Fast_dLLM_QwenForCausalLM(config).eval()
    randomize(model, 15)
    ids, mask = inputs()
    with torch.no_grad():  # its eval forward ignores attention_mask (no padding): the short row runs alone
        logits = torch.zeros(2, LENGTH, VOCAB)
        logits[0] = model(input_ids=ids[:1], block_size=8).logits[0]
        logits[1, :PAD_FROM] = model(input_ids=ids[1:, :PAD_FROM], block_size=8).logits[0]
    save("fast_dllm_v2", model, logits, ids, mask)


def sdar_moe(pkgs: str) -> None:
    from importlib import import_module

    conf = import_module(f"{pkgs}.configuration_sdar_moe")
    modeling = import_module(f"{pkgs}.modeling_sdar_moe")
    config = conf.SDARMoeConfig(  # layer 0 dense (mlp_only_layers), layer 1 MoE; no block_size, as published
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=12, rope_theta=10000.0, attention_bias=True,
        rms_norm_eps=1e-6, num_experts=4, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
        mlp_only_layers=[0], max_position_embeddings=256, pad_token_id=1, tie_word_embeddings=False,
        architectures=["SDARMoeForCausalLM"], attn_implementation="sdpa",
    )
    save_block_causal("sdar_moe", modeling.SDARMoeForCausalLM, config, seed=16)


def save_block_causal(name: str, model_class, config, *, seed: int) -> None:
    """Build an SDAR-style model (torch seed 0), randomize it with `seed`, and save it with the logits
    of its forward under the sampler's block-causal 4-D mask (blocks of 4) with the padding folded in."""
    torch.manual_seed(0)
    model = model_class(config).eval()
    randomize(model, seed)
    ids, mask = inputs()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=block_causal(mask, 4), use_cache=False).logits
    save(name, model, logits, ids, mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dllm", type=Path, required=True, help="checkout (or git dir) of ZHZisZZ/dllm")
    parser.add_argument("--mmada", type=Path, required=True, help="checkout (or git dir) of Gen-Verse/MMaDA")
    parser.add_argument("--dllm-rl", type=Path, required=True, help="checkout (or git dir) of Gen-Verse/dLLM-RL")
    parser.add_argument("--dualdiffusion", type=Path, required=True,
                        help="checkout (or git dir) of Satgoy152/DualDiffusion (Fast-dLLM v2's Hub files)")
    parser.add_argument("--dare", type=Path, required=True,
                        help="checkout (or git dir) of Xenearkr/DARE (SDAR-MoE's Hub files)")
    parser.add_argument("--rev", default="HEAD")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        repos = {"dllm": args.dllm, "mmada": args.mmada, "dllm_rl": args.dllm_rl, "dualdiffusion": args.dualdiffusion,
                 "dare": args.dare}
        revs = {key: PINNED_REVS.get(key, args.rev) for key in repos}
        shim_for_sdar(Path(tmp))
        for repo_key, packages in SOURCES.items():
            for package, files in packages.items():
                materialise(repos[repo_key], revs[repo_key], f"ref_{package}", files, Path(tmp))
        lladamoe("ref_lladamoe")
        llada2("ref_llada2")
        mmada("ref_mmada")
        sdar("ref_sdar")
        fast_dllm_v2("ref_fastdllm")
        sdar_moe("ref_sdar_moe")
    sources = {key: {"commit": git_commit(path, revs[key]), "files": SOURCES[key]} for key, path in repos.items()}
    (OUT / "SOURCES.json").write_text(json.dumps(sources, indent=2) + "\n")


if __name__ == "__main__":
    main()
