"""Run directories (atomic writes, resume), summaries and confidence intervals, environment."""
