"""``--device auto`` (the default): CUDA, then Apple MPS, then the CPU; absent devices refused up front."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import restore
from restore.cli import app
from restore.devices import auto_device, check_device
from restore.errors import RestoreError


@pytest.fixture()
def machine(monkeypatch):
    """Pretend this machine has the given accelerators (there is no GPU here)."""
    def set_up(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_up


@pytest.mark.parametrize("cuda, mps, expected, why", [
    (0, False, "cpu", "no CUDA or MPS"),
    (2, False, "cuda", "CUDA, 2 GPU(s)"),
    (1, True, "cuda", "CUDA"),  # CUDA first
    (0, True, "mps", "Apple MPS"),
])
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected, why):
    machine(cuda=cuda, mps=mps)
    device, reason = auto_device()
    assert device == torch.device(expected) and why in reason
    assert check_device("auto") == torch.device(expected) == check_device("AUTO")


@pytest.mark.parametrize("device, cuda, mps, message", [
    ("cuda", 0, False, "no CUDA GPU"),
    ("cuda:2", 2, False, "has 2 CUDA GPU(s)"),
    ("mps", 1, False, "Apple MPS is not available"),
    ("tpu", 0, False, "unknown device 'tpu' (use auto"),
])
def test_absent_devices_are_refused_with_one_line(machine, device, cuda, mps, message):
    machine(cuda=cuda, mps=mps)
    with pytest.raises(RestoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_device(device)


def test_present_devices_pass(machine):
    machine(cuda=2, mps=True)
    assert check_device("cuda:1") == torch.device("cuda:1") and check_device("mps") == torch.device("mps")


def test_load_and_run_default_to_auto_and_say_where_they_ran(machine, tmp_path):
    machine(cuda=0, mps=False)
    assert restore.load("nlm").device == torch.device("cpu")
    noisy = np.random.default_rng(0).integers(0, 256, (40, 48), dtype=np.uint8)
    report = restore.run([noisy], task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path, progress=False)
    assert report.done == 1 and report.device == "cpu"
    with pytest.raises(RestoreError, match="no CUDA GPU"):
        restore.run([noisy], task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path, device="cuda")


def test_run_with_a_restorer_object_keeps_its_device_under_auto(machine, tmp_path):
    machine(cuda=1, mps=False)  # auto would pick CUDA, but the object is on the CPU and is never moved
    nlm = restore.load("nlm", device="cpu")
    noisy = np.full((32, 32), 128, np.uint8)
    report = restore.run([noisy], task="denoise", model=nlm, sigma=0.1, out_dir=tmp_path, progress=False, device="auto")
    assert report.device == "cpu" and report.done == 1


def test_cli_says_the_auto_choice_once_and_refuses_absent_devices(machine, tmp_path):
    machine(cuda=0, mps=False)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.random.default_rng(1).integers(0, 256, (40, 40), dtype=np.uint8))
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), cv2.imread(str(src)))
    runner = CliRunner()
    result = runner.invoke(app, ["denoise", str(src), "-o", str(tmp_path / "out.png"), "--model", "nlm", "--sigma", "25"])
    assert result.exit_code == 0, result.output
    assert result.output.count("device: cpu (auto: no CUDA or MPS)") == 1
    folder = runner.invoke(app, ["denoise", str(tmp_path), "-o", str(tmp_path / "outs"), "--model", "nlm",
                                 "--sigma", "25"])
    assert folder.exit_code == 0 and folder.output.count("device: cpu") == 1, folder.output
    explicit = runner.invoke(app, ["denoise", str(src), "-o", str(tmp_path / "c.png"), "-m", "nlm", "--sigma", "25",
                                   "--device", "cpu"])
    assert explicit.exit_code == 0 and "device:" not in explicit.output
    for device, message in [("mps", "Apple MPS"), ("cuda:1", "no CUDA GPU")]:
        refused = runner.invoke(app, ["denoise", str(src), "-o", str(tmp_path / "d.png"), "--device", device])
        lines = [line for line in refused.output.splitlines() if line.strip()]
        assert refused.exit_code == 1 and len(lines) == 1 and message in lines[0], refused.output
        assert not (tmp_path / "d.png").exists()
