"""Soft-masking training [P2] (the two-pass step, trained omegas) and its evaluation: `train.run`, `evaluate.run`."""
