"""Checkpoints that ship their own modeling code (`auto_map` in config.json).

Remote code is arbitrary Python from the checkpoint; masktax imports it only when the user passes
`trust_remote_code=True` (`--trust-remote-code`). Families with a native implementation (LLaDA,
Dream) never need it. Deciding whether a config needs remote code reads config.json as plain JSON,
so the decision itself imports nothing from the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt

# auto_map entries to try, most useful for diffusion LMs first.
AUTO_MAP_ORDER = ("AutoModelForMaskedLM", "AutoModel", "AutoModelForCausalLM")


def known_to_transformers(model_type: str | None) -> bool:
    """Whether the installed transformers has a config class for `model_type`."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return model_type is not None and model_type in CONFIG_MAPPING_NAMES


def needs_remote_code(config: dict) -> bool:
    """True when the config points at bundled code and transformers cannot build it by itself."""
    return bool(config.get("auto_map")) and not known_to_transformers(config.get("model_type"))


def require_trust(path: str | Path, config: dict, trust_remote_code: bool) -> None:
    """Raise the one-line error asking for --trust-remote-code unless the user allowed it."""
    if not trust_remote_code:
        raise MasktaxError(
            f"model '{path}' (model_type {config.get('model_type')!r}) needs its own modeling code, which "
            "masktax runs only if you allow it: pass --trust-remote-code (trust_remote_code=True)"
        )


def load_remote_model(
    path: str | Path, config: dict, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool
) -> nn.Module:
    """Build the checkpoint's own model class through the Auto classes with `trust_remote_code=True`."""
    require_trust(path, config, trust_remote_code)
    import transformers

    auto_map = config.get("auto_map") or {}
    name = next((n for n in AUTO_MAP_ORDER if n in auto_map), None)
    if name is None:
        raise MasktaxError(f"model '{path}' has an auto_map without a model class ({', '.join(auto_map)})")
    auto_class = getattr(transformers, name)
    try:
        model = ckpt.hf_from_pretrained(auto_class, path, f"a remote-code model ({name})", trust_remote_code=True,
                                        dtype=dtype)
    except ImportError as err:  # the checkpoint's code imports something that is not installed
        raise MasktaxError(f"could not load remote-code model '{path}': {ckpt.reason(err)}") from err
    return model.to(device).eval()
