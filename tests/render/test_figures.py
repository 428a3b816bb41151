"""Plots are pure functions of the stored results: deterministic PNGs and their captions."""

from __future__ import annotations

from probe_helpers import SWEEP_SUMMARY

from masktax.probes import locality
from masktax.render import figures


def test_plots_are_deterministic(tmp_path):
    a = figures.sweep_plots(SWEEP_SUMMARY, tmp_path / "a", xlabel="extra masks", name="masks")
    b = figures.sweep_plots(SWEEP_SUMMARY, tmp_path / "b", xlabel="extra masks", name="masks")
    assert a == b and [n for n, _ in a] == ["masks.png", "masks_uncertainty.png"]
    for name, _ in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bars_and_lines_plots(tmp_path):
    # the old make_plots kinds "bars", "line" and "single" ("single" drew bars too)
    for kind, plots in (("bars", figures.bar_plots), ("line", figures.line_plots), ("single", figures.bar_plots)):
        (name, caption), *_ = plots(SWEEP_SUMMARY, tmp_path / kind, xlabel="x", name="locality")
        assert (tmp_path / kind / name).stat().st_size > 1000 and caption
    assert "closer to the mask" in locality.plot(SWEEP_SUMMARY, tmp_path / "l")[0][1]
