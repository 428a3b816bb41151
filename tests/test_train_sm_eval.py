"""scripts/sm_eval.py on a tiny model: validation bound, few-step decoding, mask scaling, outputs."""

from __future__ import annotations

import json

from scripts_loader import load_script
from tiny import tiny_checkpoint

from masktax.training.soft_mask_training import SoftMaskParams


def _script():
    return load_script("sm_eval")


def test_sm_eval_runs_on_a_tiny_model(tmp_path, capsys):
    ckpt = tiny_checkpoint("llada", tmp_path / "llada")
    weights = tmp_path / "sm"
    SoftMaskParams(omega_s=0.9, omega_b=-9.0).save(weights)  # strong soft-masking: must change the bound
    out = tmp_path / "eval"
    sm_eval = _script()
    code = sm_eval.main(["--model", f"tiny={ckpt}", "--out", str(out), "--soft-mask-from", str(weights),
                         "--stage", "S0", "--episodes", "2", "--t-samples", "2", "--queries", "3",
                         "--gen-length", "2", "--items", "1", "--datasets", "1", "--grid", "0,1",
                         "--unmask-steps", "2"])
    assert code == 0
    res = json.loads((out / "sm_eval.json").read_text())["models"]["tiny"]
    assert res["soft_mask"]["omega_s"] > 0.89 and res["soft_mask"]["source"].endswith("soft_mask.json")
    assert res["val_loss"]["off"] > 0 and abs(res["val_loss"]["on"] - res["val_loss"]["off"]) > 1e-4
    assert set(res["few_step"]) == {"1/off", "1/on", "2/off", "2/on"}
    assert res["few_step"]["1/off"]["agreement"] == 1.0  # the reference decode itself
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in res["few_step"].values())
    assert {"0/off", "0/on", "1/off", "1/on", "degradation/off"} <= set(res["mask_scaling"])
    assert (out / "sm_eval.png").stat().st_size > 0
    assert "## Soft-masking evaluation" in (out / "sm_eval.md").read_text()
    assert sm_eval.main(["--model", str(ckpt), "--out", str(out), "--grid", "-1"]) == 2
    assert "sm_eval: error:" in capsys.readouterr().err
