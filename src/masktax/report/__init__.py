"""Plots and Markdown reports, rebuilt from a run directory's stored results."""
