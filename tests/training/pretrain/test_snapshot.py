"""`masktax pretrain snapshot`: a running pretraining run's latest checkpoint as a loadable model."""

from __future__ import annotations

import torch

from masktax.cli.main import main
from masktax.models import load


def test_snapshot_equals_final_at_the_same_step(tmp_path, tiny_config, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config()), "--out", str(out), "--max-steps", "3", "--no-progress"]) == 0
    snap = tmp_path / "snap"
    capsys.readouterr()
    assert main(["pretrain", "snapshot", str(out), str(snap)]) == 0
    assert capsys.readouterr().out.startswith(f"{snap}: step-000003, stage ")
    assert (snap / "model.safetensors").read_bytes() == (out / "final" / "model.safetensors").read_bytes()
    a, b = load(str(out / "final")), load(str(snap))
    ids = torch.tensor([[5, 6, 7, 8, a.mask_id]])
    with torch.no_grad():
        torch.testing.assert_close(a.logits(ids), b.logits(ids))


def test_snapshot_of_no_run_or_no_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["pretrain", "snapshot", str(tmp_path / "none"), str(tmp_path / "snap")]) == 2
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "config.json").write_text("{}")
    assert main(["pretrain", "snapshot", str(tmp_path / "fresh"), str(tmp_path / "snap")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("masktax: error: ") for line in err)
    assert "has no checkpoint yet" in err[1]
