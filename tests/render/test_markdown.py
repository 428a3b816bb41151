"""Report Markdown is a pure function of config, env, summary and the plot list."""

from __future__ import annotations

from probe_helpers import SWEEP_SUMMARY, point

from masktax.probes import locality, masks
from masktax.render import markdown
from masktax.report.build import glance_lines


def test_markdown_tables_and_mask_tax():
    text = markdown.render(
        config={"probe": "masks", "models": ["org/mdlm", "org/ar"]}, env={"models": {}}, summary=SWEEP_SUMMARY,
        plots=[("masks.png", "cap")], description="d", x_meaning="x = extra masks", change=masks.CHANGE,
    )
    assert "| 0 | 80.0 [75.0, 85.0] |" in text
    assert "| org/mdlm | masks | 0 | 200 | +25.0 | [+25.0, +25.0] |" in text  # 80.0 - 55.0 points, paired
    assert "org/ar: NOT APPLICABLE" in text and "75.0 [70.0, 80.0]" in text
    assert "![cap](plots/masks.png)" in text and "## How to read this" in text


def test_mask_tax_is_measured_from_the_format_length():
    pts = [point(0, 0.3), point(1, 0.5), point(2, 0.8), point(200, 0.6)]
    assert masks.CHANGE.baseline_x == masks.FORMAT_X == 2 and locality.CHANGE.baseline_x is None
    # x = 0, 1 end the text early
    assert [p["x"] for p in markdown.sweep_ends(pts, masks.CHANGE.baseline_x)] == [2, 200]
    assert [p["x"] for p in markdown.sweep_ends(pts, locality.CHANGE.baseline_x)] == [0, 200]
    assert [p["x"] for p in markdown.sweep_ends(pts[:3], masks.CHANGE.baseline_x)] == [0, 2]  # x = 2 is the last point
    summary = {"probe": "masks", "models": {"m": pts}}
    assert "| m | masks | 2 | 200 | +20.0 | [+20.0, +20.0] |" in "\n".join(markdown.change_lines(summary, masks.CHANGE))
    assert "| +20.0 [+20.0, +20.0] |" in "\n".join(glance_lines({"masks": summary}))
