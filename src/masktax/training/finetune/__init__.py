"""Mask-agnostic fine-tuning [P1] (LoRA or full) of an MDLM: `train.run`."""
