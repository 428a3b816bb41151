"""Figures and Markdown as pure functions of stored summaries (the probes' and the reports' drawing)."""
