"""Packing a run dir under a size limit (degrading to fit) and unpacking it."""

from __future__ import annotations

import torch

from masktax.cli.main import main


def test_pack_round_trip_degrades_to_fit(tmp_path, tiny_config):
    from masktax.training.pretrain.pack import pack_run, unpack_run

    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config()), "--out", str(out), "--max-steps", "3", "--no-progress"]) == 0
    assert pack_run(out, tmp_path / "a.tar.gz") == "exact"
    size = (tmp_path / "a.tar.gz").stat().st_size
    assert pack_run(out, tmp_path / "b.tar.gz", max_bytes=int(size * 0.8)) != "exact"
    run = unpack_run(tmp_path / "b.tar.gz", tmp_path / "unpacked")
    assert (run / "final" / "model.safetensors").is_file() and (run / "step-000003" / "state.json").is_file()
    opt = torch.load(run / "step-000003" / "optimizer.pt", weights_only=True) if (run / "step-000003" / "optimizer.pt").exists() else None
    assert opt is None or all(v.dtype == torch.bfloat16 for s in opt["state"].values() for k, v in s.items() if k != "step")
