"""Model adapters: the only code that touches checkpoint loading, mask ids and the logit shift.

    from masktax.models import load
    adapter = load("GSAI-ML/LLaDA-8B-Base")      # or a local checkpoint directory
    logits = adapter.logits(ids, attention_mask)  # [b, l, V], position i predicts token i
"""

from masktax.models.adapter import Adapter, shift_logits
from masktax.models.batching import auto_batch_size
from masktax.models.cards import MODEL_CARDS, ModelCard
from masktax.models.load import load

__all__ = ["Adapter", "MODEL_CARDS", "ModelCard", "auto_batch_size", "load", "shift_logits"]
