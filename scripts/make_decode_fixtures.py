"""Write tests/samplers/fixtures/decode_reference.json: token ids decoded by the PUBLISHED generate functions.

The decoders that masktax's block sampler re-implements (`edit_threshold`, `sub_block_size`, and its
default rule), each run on a tiny fixture of tests/models/fixtures (made by scripts/make_family_fixtures.py from the published
modeling code) for a few seeded random prompts, in fp32 on the CPU (greedy; LLaDA2.1 also sampled,
from a seeded default generator):

    llada21       `LLaDA2MoeModelLM.generate` of ZHZisZZ/dllm dllm/pipelines/llada21/models/modeling_llada21_moe.py
                  (LLaDA2.1: threshold unmasking plus token editing), on the llada2_moe fixture's weights
                  loaded into the 2.1 class (same architecture; the script checks the logits), with eager
                  attention: the generate builds its additive block mask in bf16, which SDPA refuses for an
                  fp32 model; eager attention adds it (0 / -inf, exact in bf16) to fp32 scores
    llada20       `LLaDA2MoeModelLM.generate` of dllm/pipelines/llada2/models/modeling_llada2_moe.py (LLaDA2.0: the
                  plain threshold rule with the even schedule, masktax's default), as a function on that same
                  2.1 model (see `llada20`)
    fast_dllm_v2  `Fast_dLLM_QwenForCausalLM.generate` of Satgoy152/DualDiffusion @ d3a3470
                  FastDLLM_inferencing/Fast_dLLM_v2_7B/modeling.py (the Hub repository's file: sub-blocks,
                  threshold parallel decoding, the block KV cache), on the fast_dllm_v2 fixture

The fixtures' mask is token 2 (a real token of the tiny vocabulary). masktax never decodes [MASK]
(docs/samplers.md); the published code can, so a forward hook (it only reads the logits) checks
that no logit row of any forward the published generate makes has [MASK] as its argmax: on such a
run the two decoders would differ by design, and the script stops (for a sampled case: when
`torch.multinomial` drew [MASK] anywhere). tests/samplers/test_block_reference.py asserts that
masktax reproduces every stored output exactly. The same inputs give the same file, byte for byte.

It runs in the throwaway transformers-4.57 environment of make_family_fixtures.py (nothing here is
imported by masktax):

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -c constraints.txt torch==2.13.0 'transformers==4.57.*' safetensors numpy einops
    /tmp/refvenv/bin/python scripts/make_decode_fixtures.py --dllm DLLM --dualdiffusion DUALDIFFUSION

(`--dllm` / `--dualdiffusion`: a work tree or bare git directory of each repository.)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_family_fixtures as fam  # noqa: E402  (git_show, materialise, block_causal, fixture paths)

OUT = fam.ROOT / "tests" / "samplers" / "fixtures" / "decode_reference.json"
MASK, EOS = 2, 1  # the fixtures' mask (a token of the tiny vocabulary) and EOS/pad
SOURCES = {
    "dllm": ["dllm/pipelines/llada21/models/configuration_llada21_moe.py",
             "dllm/pipelines/llada21/models/modeling_llada21_moe.py",
             "dllm/pipelines/llada2/models/configuration_llada2_moe.py",
             "dllm/pipelines/llada2/models/modeling_llada2_moe.py"],
    "dualdiffusion": ["FastDLLM_inferencing/Fast_dLLM_v2_7B/configuration.py",
                      "FastDLLM_inferencing/Fast_dLLM_v2_7B/modeling.py"],
}
# (prompt length, prompt seed, generated tokens, threshold, editing threshold, max post steps, temperature,
# sampling seed); blocks of 8. The tiny random model's confidences lie near 0.15, so most cases use low thresholds
# (the last greedy one is the published defaults). Prompts of 16 and 21 tokens put the first decoded block at a
# block start / with 5 prompt tokens in it (never edited); 2 post steps cut editing short.
LLADA21_CASES = [(5, 0, 20, 0.5, 0.08, 16, 0.0, 0), (21, 5, 20, 0.5, 0.08, 16, 0.0, 0),
                 (16, 2, 20, 0.16, 0.15, 16, 0.0, 0), (21, 5, 20, 0.3, 0.1, 2, 0.0, 0),
                 (13, 3, 24, 0.95, 0.9, 16, 0.0, 0), (11, 6, 20, 0.3, 0.1, 16, 0.7, 100),
                 (16, 7, 16, 0.2, 0.12, 16, 0.5, 101)]
# (prompt length, prompt seed, generated tokens, steps per block, threshold): LLaDA2.0's plain rule (even schedule).
LLADA20_CASES = [(5, 20, 19, 4, 0.16), (16, 21, 16, 8, 0.15), (13, 22, 24, 3, 0.95), (21, 23, 19, 8, 0.17)]
# (prompt length, prompt seed, max_new_tokens, threshold, small_block_size, stop token); blocks of 8, greedy. A
# prompt of exactly one block is left out: the published generate then decodes the first block without the prompt
# in context. The stop token 1 ends the first case early; 63 never appears.
FAST_CASES = [(5, 10, 24, 0.15, 4, 1), (11, 11, 24, 0.14, 2, 63), (16, 12, 24, 0.15, 4, 63),
              (13, 13, 24, 0.14, 2, 63), (7, 16, 24, 1.0, 8, 63)]


def prompt_ids(length: int, seed: int) -> torch.Tensor:
    """A seeded prompt `[1, length]` of ordinary tokens (neither the mask 2 nor the EOS/pad 1 nor 0)."""
    return torch.randint(3, fam.VOCAB, (1, length), generator=torch.Generator().manual_seed(seed))


def guard(model: torch.nn.Module) -> list[int]:
    """Per forward, whether its logits anywhere have [MASK] as argmax. The hook sits on the output head (the
    generate functions call `self.forward`, which module hooks do not see) and only reads the logits."""
    hits: list[int] = []

    def hook(_module, _args, logits):
        hits.append(int((logits.argmax(-1) == MASK).any()))

    model.lm_head.register_forward_hook(hook)
    return hits


@contextmanager
def drawn_masks() -> Iterator[list[int]]:
    """While active, `torch.multinomial` (what the published code samples with) also notes each time it draws
    [MASK]; the draws themselves are untouched. masktax draws again there, so such a run cannot be compared."""
    drawn: list[int] = []
    original = torch.multinomial

    def observed(*args, **kwargs):
        out = original(*args, **kwargs)
        drawn.extend([1] if bool((out == MASK).any()) else [])
        return out

    torch.multinomial = observed
    try:
        yield drawn
    finally:
        torch.multinomial = original


def load_weights(model: torch.nn.Module, fixture: Path) -> torch.nn.Module:
    model.load_state_dict(load_file(str(fixture / "model.safetensors")), strict=True)
    return model.eval()


def llada21(pkg: str) -> tuple[list[dict], list[dict]]:
    """The LLaDA2.1 cases, and the LLaDA2.0 cases (see `llada20`) on the same model."""
    conf = import_module(f"{pkg}.configuration_llada21_moe")
    modeling = import_module(f"{pkg}.modeling_llada21_moe")
    fixture = fam.OUT / "llada2_moe"
    fields = json.loads((fixture / "config.json").read_text())
    for key in ("architectures", "model_type", "transformers_version", "dtype"):
        fields.pop(key, None)
    config = conf.LLaDA2MoeConfig(**fields, attn_implementation="eager")  # its generate builds a bf16 mask: see above
    model = load_weights(modeling.LLaDA2MoeModelLM(config), fixture)
    ref = load_file(str(fixture / "reference.safetensors"))
    with torch.no_grad():  # the 2.1 class on the 2.0 fixture's weights gives the fixture's logits
        logits = model(input_ids=ref["input_ids"], attention_mask=fam.block_causal(ref["attention_mask"], 8)).logits
    torch.testing.assert_close(logits, ref["logits"], atol=1e-5, rtol=1e-5)
    hits = guard(model)
    cases = []
    for plen, seed, gen, threshold, edit, post, temperature, sample_seed in LLADA21_CASES:
        prompt = prompt_ids(plen, seed)
        hits.clear()
        torch.manual_seed(sample_seed)  # sampled cases draw from the default generator, as the published code does
        with drawn_masks() as drawn:
            out = model.generate(inputs=prompt, temperature=temperature, block_length=8, gen_length=gen,
                                 threshold=threshold, editing_threshold=edit, max_post_steps=post, eos_id=EOS,
                                 mask_id=MASK)
        if (temperature == 0 and any(hits)) or drawn:
            raise SystemExit(f"llada21 case {plen, seed}: [MASK] predicted or drawn; pick another seed")
        cases.append({"fixture": "llada2_moe", "prompt": prompt[0].tolist(), "gen_length": gen,
                      "threshold": threshold, "editing_threshold": edit, "max_post_steps": post,
                      "temperature": temperature, "seed": sample_seed, "eos_id": EOS, "mask_id": MASK,
                      "forwards": len(hits), "output": out[0].tolist()})
        print(f"llada21 P={plen}: {len(hits)} forwards, {len(out[0])} tokens")
    return cases, llada20(import_module(f"{pkg}.modeling_llada2_moe"), model, hits)


def llada20(modeling, model: torch.nn.Module, hits: list[int]) -> list[dict]:
    """LLaDA2.0's published `generate` (the plain rule), run as a function on the 2.1 model: the 2.0 file's own
    forward cannot take the bf16 additive mask its generate builds in fp32 (SDPA refuses the dtype; its eager
    path reads a 4-D mask as 0/1 and would mask everything); the 2.1 forward, the same architecture, adds it."""
    cases = []
    for plen, seed, gen, steps, threshold in LLADA20_CASES:
        prompt = prompt_ids(plen, seed)
        hits.clear()
        out = modeling.LLaDA2MoeModelLM.generate(model, inputs=prompt, temperature=0.0, block_length=8, steps=steps,
                                                 gen_length=gen, threshold=threshold, eos_id=EOS, mask_id=MASK)
        if any(hits):
            raise SystemExit(f"llada20 case {plen, seed}: a forward predicted [MASK]; pick another prompt seed")
        cases.append({"fixture": "llada2_moe", "prompt": prompt[0].tolist(), "gen_length": gen,
                      "steps_per_block": steps, "threshold": threshold, "eos_id": EOS, "mask_id": MASK,
                      "forwards": len(hits), "output": out[0].tolist()})
        print(f"llada20 P={plen}: {len(hits)} forwards, {len(out[0])} tokens")
    return cases


def fast_dllm_v2(pkg: str) -> list[dict]:
    conf = import_module(f"{pkg}.configuration")
    modeling = import_module(f"{pkg}.modeling")
    fixture = fam.OUT / "fast_dllm_v2"
    config = conf.Fast_dLLM_QwenConfig.from_pretrained(str(fixture))
    model = load_weights(modeling.Fast_dLLM_QwenForCausalLM(config), fixture)
    hits = guard(model)
    cases = []
    for plen, seed, new, threshold, sub, stop in FAST_CASES:
        prompt = prompt_ids(plen, seed)
        hits.clear()
        out, _, _ = model.generate(prompt, max_new_tokens=new, mask_id=MASK, threshold=threshold,
                                   small_block_size=sub, block_size=8, stop_token=stop, temperature=0)
        if any(hits):
            raise SystemExit(f"fast_dllm_v2 case {plen, seed}: a forward predicted [MASK]; pick another prompt seed")
        cases.append({"fixture": "fast_dllm_v2", "prompt": prompt[0].tolist(), "max_new_tokens": new,
                      "threshold": threshold, "small_block_size": sub, "stop_token": stop, "mask_id": MASK,
                      "forwards": len(hits), "output": out[0, plen:].tolist()})
        print(f"fast_dllm_v2 P={plen}: {len(hits)} forwards, {out.shape[1] - plen} tokens")
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dllm", type=Path, required=True, help="checkout (or git dir) of ZHZisZZ/dllm")
    parser.add_argument("--dualdiffusion", type=Path, required=True, help="checkout (or git dir) of "
                        "Satgoy152/DualDiffusion (Fast-dLLM v2's Hub files)")
    parser.add_argument("--rev", default="HEAD", help="revision of dllm (DualDiffusion: d3a3470)")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float32)
    repos = {"dllm": (args.dllm, args.rev), "dualdiffusion": (args.dualdiffusion, fam.DUALDIFFUSION_REV)}
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        for key, (repo, rev) in repos.items():
            fam.materialise(repo, rev, f"ref_{key}", SOURCES[key], Path(tmp))
        llada21_cases, llada20_cases = llada21("ref_dllm")
        result = {
            "sources": {key: {"commit": fam.git_commit(repo, rev), "files": SOURCES[key]}
                        for key, (repo, rev) in repos.items()},
            "llada21": llada21_cases,
            "llada20": llada20_cases,
            "fast_dllm_v2": fast_dllm_v2("ref_dualdiffusion"),
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
