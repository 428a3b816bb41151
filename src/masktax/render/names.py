"""Short display names for models in legends and tables (no plotting imports)."""

from __future__ import annotations

from pathlib import Path


def label(model: str) -> str:
    """A short legend label for a model name or path.

    A Hub id keeps its owner (`GSAI-ML/LLaDA-8B-Base`); a local checkpoint path gives its directory
    name, or its run's name for a run's `final/` (`runs/ft/ce_tv/final` -> `ce_tv`), so the
    variants of one study stay distinguishable.
    """
    parts = [p for p in model.replace("\\", "/").split("/") if p]
    if len(parts) >= 2 and parts[-1] == "final":
        return parts[-2]
    if len(parts) == 2 and not model.startswith((".", "/")) and not Path(model).exists():
        return model  # owner/name on the Hub
    return parts[-1] if parts else model
