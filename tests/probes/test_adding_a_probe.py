"""docs/probes.md's worked example of adding a probe runs as written (one module + one PROBES line)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

from probe_helpers import tiny_adapter

from masktax import probes
from masktax.probes import RunConfig, run_probe
from masktax.report.build import rebuild

DOC = Path(__file__).resolve().parents[2] / "docs" / "probes.md"


def example_module(tmp_path: Path):
    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"<!-- example-probe -->\n```python\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "distractors.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("masktax_doc_example_distractors", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_documented_probe_runs_and_rebuilds(tmp_path, monkeypatch):
    distractors = example_module(tmp_path)
    monkeypatch.setitem(probes.PROBES, distractors.NAME, distractors)
    lm = tiny_adapter("mdlm")
    cfg = RunConfig(models=("tiny",), out=str(tmp_path / "run"), n_items=2,
                    datasets=("country__smallest", "verb__largest"), progress=False)
    out = run_probe(distractors, cfg, distractors.Options(grid="0,10"), loaded={"tiny": lm})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["probe"] == "distractors"
    assert [p["x"] for p in summary["models"]["tiny"]] == [0, 10]
    assert all(p["n_items"] == 4 for p in summary["models"]["tiny"])
    (out / "report.md").unlink()
    assert rebuild(out)["models"] == summary["models"]  # `masktax report` finds it through PROBES
    assert "one-mask accuracy vs number of distractor examples" in (out / "report.md").read_text().lower()
