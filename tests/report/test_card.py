"""`masktax card`: card.json's schema, the page and figure, resume, and flag errors (tiny models, a
shortened protocol: the real one runs in docs/cards/)."""

from __future__ import annotations

import json

import pytest
from probe_helpers import DATASET, assert_one_line_error, tiny_adapter

from masktax.report import card as card_module
from masktax.report.card import CardConfig, Step, run_card

SHORT = (
    Step("accuracy", quick_items=1),
    Step("masks", quick=(("grid", (2, 20)),), quick_items=1),
    Step("format", quick=(("grid", (0, 2)), ("kinds", ("masks", "filler")), ("closures", ("none", "after-answer"))),
         quick_items=1),
)
MODEL_KEYS = {"kind", "source", "revision", "n_parameters", "dtype", "one_mask_accuracy", "mask_tax", "filler_tax",
              "format_closure", "format_count", "locality_gap", "context_length_drop", "unmask_recovery",
              "relative_degradation", "attribution_masks"}


@pytest.fixture
def short_protocol(monkeypatch):
    monkeypatch.setattr(card_module, "PROTOCOL", SHORT)


def make_card(out, lines=None):
    cfg = CardConfig(models=("llada", "ar"), out=str(out), progress=False, datasets=(DATASET,))
    run_card(cfg, loaded={"llada": tiny_adapter("mdlm"), "ar": tiny_adapter("ar")},
             say=(lines.append if lines is not None else lambda _: None))
    return json.loads((out / "card.json").read_text())


def test_card_schema_page_figure_and_resume(tmp_path, short_protocol):
    lines: list[str] = []
    card = make_card(tmp_path / "c", lines)
    assert card["schema_version"] == 1 and card["protocol_version"] == card_module.PROTOCOL_VERSION
    assert card["budget"] == "quick" and card["masktax_version"]
    assert set(card["hardware"]) == {"platform", "cpu_count", "torch_threads", "cuda", "devices"}
    assert [s["probe"] for s in card["protocol"]] == ["accuracy", "masks", "format"]
    assert card["protocol"][1] == {"probe": "masks", "n_items": 1, "options": {"grid": [2, 20]}}
    assert list(card["models"]) == ["llada", "ar"]
    for entry in card["models"].values():
        assert set(entry) == MODEL_KEYS
    mdlm, ar = card["models"]["llada"], card["models"]["ar"]
    tax = mdlm["mask_tax"]
    assert (tax["from_x"], tax["to_x"]) == (2, 20)
    assert tax["value"] == pytest.approx(tax["format_part"]["value"] + tax["comprehension_part"]["value"])
    assert ar["mask_tax"]["applicable"] is False and ar["format_closure"]["applicable"] is False
    assert mdlm["format_closure"]["effect"].startswith("closure")
    assert mdlm["filler_tax"] is None and mdlm["attribution_masks"] is None  # not in this protocol
    assert any("estimated time" in line and "items/s" in line for line in lines)
    assert any(line.startswith("[3/3] format") for line in lines)
    page = (tmp_path / "c" / "card.md").read_text()
    assert "| | llada | ar |" in page and "mask tax: acc(x = 2) - acc(x = 20)" in page and "## Protocol" in page
    assert (tmp_path / "c" / "card.png").is_file()

    counts = {p: len((tmp_path / "c" / p / "items.jsonl").read_text().splitlines()) for p in ("accuracy", "masks", "format")}
    items = tmp_path / "c" / "masks" / "items.jsonl"  # an interrupted step: half its records lost
    rows = items.read_text().splitlines(keepends=True)
    items.write_text("".join(rows[: len(rows) // 2]))
    (tmp_path / "c" / "card.json").unlink()
    again = make_card(tmp_path / "c")
    assert again == card
    assert counts == {p: len((tmp_path / "c" / p / "items.jsonl").read_text().splitlines()) for p in counts}


def test_card_flags_are_one_line_errors(tmp_path, capsys):
    assert_one_line_error(["card", "--model", "embedded-mdlm", "--out", str(tmp_path / "x"), "--budget", "huge"],
                          "--budget must be one of quick, paper, got 'huge'", capsys)
    (tmp_path / "f").write_text("")
    assert_one_line_error(["card", "--model", "embedded-mdlm", "--out", str(tmp_path / "f")],
                          f"--out {tmp_path / 'f'} is a file, not a directory", capsys)
