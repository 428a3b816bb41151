"""The known models as a text table (what `masktax models` prints): one row per MODEL_CARDS entry."""

from __future__ import annotations

from masktax.models.cards import MODEL_CARDS


def models_table() -> str:
    """The known models as an aligned text table; shipped models without weights say [not installed]."""
    from masktax.models.load import EMBEDDED_DIR  # looked up per call, as `load` does

    header = ("name", "family", "mask id", "shift", "chat", "context", "notes")
    rows = [header]
    for name, card in MODEL_CARDS.items():
        notes = card.notes
        if card.hf_id is None and not (EMBEDDED_DIR / name / "config.json").is_file():
            notes += " [not installed]"
        mask = "-" if card.mask_id is None else str(card.mask_id)
        if card.mask_id is None and card.family in ("llada", "dream"):
            mask = "tokenizer"
        rows.append((name, card.family, mask, "yes" if card.shift else "no", "yes" if card.chat else "no",
                     "config" if card.context_length is None else str(card.context_length), notes))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    return "\n".join(line.rstrip() for line in lines)
