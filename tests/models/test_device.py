"""`masktax.models.device.resolve_device`: only devices this machine has (CUDA presence faked)."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_checkpoint

from masktax.errors import MasktaxError
from masktax.models.device import resolve_device
from masktax.models.llada import LLaDAModelLM
from masktax.models.load import resolve_device as reexported


def fake_cuda(monkeypatch, available: bool, count: int = 0) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_auto_and_cpu(monkeypatch):
    fake_cuda(monkeypatch, False)
    assert resolve_device(None) == resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    fake_cuda(monkeypatch, True, 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert reexported is resolve_device  # training imports it from masktax.models.load


@pytest.mark.parametrize("device,available,count,message", [
    ("cuda", False, 0, "device 'cuda' requested but CUDA is not available"),
    ("cuda:0", False, 0, "CUDA is not available"),
    ("cuda:2", True, 2, r"device 'cuda:2' requested but this machine has 2 CUDA device\(s\) \(cuda:0..cuda:1\)"),
    ("gpu", True, 1, "unknown device 'gpu'"),
    ("cuda:-1", True, 1, "unknown device"),
    ("", True, 1, "unknown device ''"),
    ("meta", True, 1, "unsupported device 'meta'"),
])
def test_devices_this_machine_lacks_are_one_line_errors(monkeypatch, device, available, count, message):
    fake_cuda(monkeypatch, available, count)
    with pytest.raises(MasktaxError, match=message):
        resolve_device(device)


def test_native_from_pretrained_resolves_its_device(monkeypatch, tmp_path):
    """A library call straight to a native class fails in one line, not in safetensors' pin_memory."""
    path = tiny_checkpoint("llada", tmp_path / "m", with_tokenizer=False)
    fake_cuda(monkeypatch, False)
    with pytest.raises(MasktaxError, match="CUDA is not available"):
        LLaDAModelLM.from_pretrained(path, device="cuda")
