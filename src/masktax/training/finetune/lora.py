"""LoRA / DoRA (through peft) for fine-tuning (`finetune`, `train_sm`): which layers, and training state.

[P1] fine-tunes with LoRA rank 64, alpha 128, dropout 0; the target modules are not stated. Ours
are every linear layer of every block (attention and MLP), per family:

    llada, mmada (native names): q_proj k_proj v_proj attn_out ff_proj up_proj ff_out (inside blocks
                          only: the top-level `ff_out` is LLaDA's output head and stays frozen)
    dream / Qwen2, Llama, sdar, fast_dllm_v2: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
    lladamoe:             q_proj k_proj v_proj o_proj, the dense layers' and the shared expert's
                          gate_proj up_proj down_proj
    llada2_moe:           query_key_value (the fused q/k/v projection) dense (its output projection),
                          the dense layers' and the shared experts' gate_proj up_proj down_proj

In the MoE families the router (`mlp.gate`) and the routed experts (`mlp.experts.N.*`) stay frozen
by default: the router picks experts, and an adapter per routed expert would multiply the adapter's
size by the number of experts (256 per layer in LLaDA2-mini) while each sees only its share of the
tokens. Names given with `--lora-targets` match as suffixes anywhere (routed experts included),
except in the LLaDA layout (llada, mmada), where they match inside the blocks only.

[P2] trains soft-masking with DoRA (`use_dora`: W = m * (W0 + B A) / ||W0 + B A||_c, a trained
magnitude m per output column) of r = 16 on q, k, v, o; `present_targets` keeps the names a model has.

Applying a finished run to a loaded model, and merging it, is `masktax.models.finetuned`.
"""

from __future__ import annotations

import torch
from torch import nn

from masktax.errors import MasktaxError

_LLADA_BLOCK = r".*\.blocks\.\d+\.({})"
# a MoE layer's attention, dense MLP and shared expert(s); not the router `mlp.gate`, not `mlp.experts.N`
_MOE_LAYER = r".*\.layers\.\d+\.(?:self_attn|attention|mlp|mlp\.shared_experts|shared_expert)\.({})"
_LLADA_NAMES = ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")
_QWEN_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llada": _LLADA_NAMES,
    "mmada": _LLADA_NAMES,
    "dream": _QWEN_NAMES,
    "ar": _QWEN_NAMES,
    "sdar": _QWEN_NAMES,
    "sdar_moe": _QWEN_NAMES,
    "fast_dllm_v2": _QWEN_NAMES,
    "lladamoe": _QWEN_NAMES,
    "llada2_moe": ("query_key_value", "dense", "gate_proj", "up_proj", "down_proj"),
}
BLOCK_REGEX = {"llada": _LLADA_BLOCK, "mmada": _LLADA_BLOCK}  # any targets: inside the blocks only
DEFAULT_REGEX = {"lladamoe": _MOE_LAYER, "llada2_moe": _MOE_LAYER, "sdar_moe": _MOE_LAYER}  # the default targets: not router, not experts


def peft_targets(family: str, targets: tuple[str, ...] | None) -> str | list[str]:
    """peft's `target_modules`: a regex restricted to LLaDA's blocks (llada, mmada) or, for the MoE
    families' default targets, to attention, dense MLPs and shared experts; else a list of name suffixes."""
    regex = BLOCK_REGEX.get(family)
    if targets is None:
        if family not in LORA_TARGETS:
            raise MasktaxError(f"no default LoRA targets for family '{family}'; pass --lora-targets")
        targets, regex = LORA_TARGETS[family], regex or DEFAULT_REGEX.get(family)
    if regex is not None:
        return regex.format("|".join(targets))
    return list(targets)


# a separate attention projection's name -> the fused one that holds it (LLaDA2: query_key_value, dense)
FUSED_ATTENTION = {"q_proj": "query_key_value", "k_proj": "query_key_value", "v_proj": "query_key_value",
                   "o_proj": "dense", "attn_out": "dense"}


def present_targets(model: nn.Module, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The names in `targets` that are module names of `model` (last dotted part), an absent attention
    projection standing for the fused module that holds it (LLaDA2); error if none is present."""
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    named = (t if t in present else FUSED_ATTENTION.get(t) for t in targets)
    kept = tuple(dict.fromkeys(t for t in named if t in present))
    if not kept:
        raise MasktaxError(f"none of the LoRA targets {list(targets)} is a module of this model")
    return kept


def add_lora(model: nn.Module, family: str, *, rank: int, alpha: float, dropout: float,
             targets: tuple[str, ...] | None, use_dora: bool = False) -> nn.Module:
    """Wrap `model` (in place) in a peft model with fresh LoRA (or DoRA) adapters; only they are trainable.

    Returns the `PeftModel`; `model` itself now holds the adapter layers, so it can keep being called.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, bias="none", use_dora=use_dora,
                        target_modules=peft_targets(family, targets))
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # peft: "Target modules ... not found in the base model"
        raise MasktaxError(f"LoRA targets do not match this model ({family}): {err}") from err


class TrainableState(nn.Module):
    """A view of a model's trainable parameters with the `state_dict` / `load_state_dict` that
    `training.loop.save_checkpoint` / `load_checkpoint` use, so a LoRA checkpoint holds only the adapter."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {n: p.detach() for n, p in self._params.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):  # type: ignore[override]
        missing = [n for n in self._params if n not in state]
        unexpected = [n for n in state if n not in self._params]
        with torch.no_grad():
            for n, t in state.items():
                if n in self._params:
                    self._params[n].copy_(t)
        return nn.modules.module._IncompatibleKeys(missing, unexpected)
