"""Two processes (torchrun, CPU, gloo through accelerate) give exactly the numbers of one process: lm-eval
shards the requests, MasktaxLM's hooks gather them, per-request seeds make each request's draws the same."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("dist_eval.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tiny_ckpts, tiny_tasks, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    sys.path.insert(0, str(SCRIPT.parent))
    from dist_eval import main as one_process

    one_process(tiny_ckpts["llada"], str(tiny_tasks), str(tmp_path / "one.json"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), str(SCRIPT), tiny_ckpts["llada"],
                    str(tiny_tasks), str(tmp_path / "two.json")], check=True, env=env, capture_output=True, timeout=600)
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert set(one["results"]) == {"tiny_ll", "tiny_mc", "tiny_gen", "tiny_roll"}
    for task, metrics in one["results"].items():
        for key, value in metrics.items():
            if isinstance(value, float):
                assert two["results"][task][key] == pytest.approx(value, rel=1e-6), (task, key)
