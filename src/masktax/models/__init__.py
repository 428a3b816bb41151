"""Model adapters: the only code that touches checkpoint loading, mask ids and the logit shift.

    from masktax.models import load
    lm = load("GSAI-ML/LLaDA-8B-Base")      # or a local checkpoint directory
    logits = lm.logits(ids, attention_mask)  # [b, l, V], position i predicts token i
"""

from masktax.models.batching import auto_batch_size
from masktax.models.cards import MODEL_CARDS, ModelCard
from masktax.models.load import load
from masktax.models.loaded import LoadedModel, shift_logits

__all__ = ["LoadedModel", "MODEL_CARDS", "ModelCard", "auto_batch_size", "load", "shift_logits"]
