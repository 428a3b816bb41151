"""Pretraining the embedded models (MDLM, Dream-like MDLM, AR twin) on the few-shot corpus: `train.run`."""
