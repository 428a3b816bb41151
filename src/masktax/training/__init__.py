"""Training: the MDLM / AR losses, the few-shot corpus, the curriculum and the pretraining loop."""

from masktax.training.mdlm_loss import (
    answer_focused_mask,
    ar_loss,
    forward_mask,
    masked_mean_ce,
    mdlm_loss,
    sample_p,
)

__all__ = ["answer_focused_mask", "ar_loss", "forward_mask", "masked_mean_ce", "mdlm_loss", "sample_p"]
from masktax.training.mask_agnostic_loss import mask_agnostic_loss  # noqa: E402, F401
