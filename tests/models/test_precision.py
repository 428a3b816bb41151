"""`masktax.models.precision`: bf16 autocast by measured capability, the slow-dtype notice (speeds faked)."""

from __future__ import annotations

import pytest
import torch

from masktax.models import precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def fake_speeds(monkeypatch, fp32: float, bf16: float) -> None:
    speeds = {torch.float32: fp32, torch.bfloat16: bf16, torch.float16: bf16}
    monkeypatch.setattr(precision, "matmul_gflops", lambda dtype, device_type="cpu", n=precision.PROBE_N: speeds[dtype])


@pytest.mark.parametrize("fp32,bf16,want", [
    (125.0, 9.0, None),  # AVX2 EPYC: bf16 14x slower -> fp32
    (180.0, 720.0, torch.bfloat16),  # AVX512_BF16: 4x faster -> bf16
    (180.0, 200.0, None),  # within the margin: noise must not decide
])
def test_auto_on_cpu_follows_the_measurement(monkeypatch, fp32, bf16, want):
    fake_speeds(monkeypatch, fp32, bf16)
    assert precision.autocast_dtype("auto", CPU) is want
    assert precision.autocast_dtype("off", CPU) is None
    assert precision.autocast_dtype("bf16", CPU) is torch.bfloat16
    assert precision.autocast_dtype("auto", CUDA) is torch.bfloat16


def test_record_names_the_choice_and_its_measurement(monkeypatch):
    fake_speeds(monkeypatch, 125.0, 9.0)
    rec = precision.autocast_record("auto", CPU, precision.autocast_dtype("auto", CPU))
    assert rec["requested"] == "auto" and rec["chosen"] == "off"
    assert rec["matmul_gflops"]["float32"] == 125.0 and rec["matmul_gflops"]["bfloat16"] == 9.0
    assert rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert precision.autocast_record("off", CPU, None) == {"requested": "off", "chosen": "off"}


def test_notice_only_for_a_forced_dtype_slower_than_fp32(monkeypatch):
    fake_speeds(monkeypatch, 125.0, 9.0)
    notice = precision.slow_dtype_notice(torch.bfloat16, CPU)
    assert notice is not None and "\n" not in notice and "13.9x slower than float32" in notice
    assert precision.slow_dtype_notice(torch.float32, CPU) is None
    assert precision.slow_dtype_notice(torch.bfloat16, CUDA) is None
    fake_speeds(monkeypatch, 180.0, 720.0)
    assert precision.slow_dtype_notice(torch.bfloat16, CPU) is None


def test_the_measurement_is_real_and_cached():
    precision.matmul_gflops.cache_clear()
    first = precision.matmul_gflops(torch.float32, "cpu", 64)
    assert first > 0 and precision.matmul_gflops(torch.float32, "cpu", 64) == first
    assert precision.matmul_gflops.cache_info().hits >= 1
