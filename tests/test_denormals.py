"""Training and the model jobs flush denormal floats to zero on the CPU (a long-trained model's
denormal weights halved its rollout speed); see morec/denormals.py."""

from __future__ import annotations

import platform

import pytest
import torch

from morec.denormals import flush_denormals
from morec.training.config import load_config
from morec.training.pipeline import start_run
from tests.helpers import random_dataset_file, smoke

DENORMAL = 1e-39  # below float32's smallest normal number, 1.18e-38

needs_x86 = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="flushing denormals is an x86 setting here"
)


def flushes() -> bool:
    return (torch.tensor([DENORMAL]) * 1.0).item() == 0.0


@pytest.fixture
def denormals_kept():
    torch.set_flush_denormal(False)
    assert not flushes()
    yield
    torch.set_flush_denormal(False)


@needs_x86
def test_flush_denormals_turns_them_to_zero(denormals_kept):
    assert flush_denormals() and flushes()


@needs_x86
def test_a_cpu_training_run_flushes_denormals(tmp_path, denormals_kept):
    data = random_dataset_file(tmp_path / "hopper.hdf5", "Hopper-v4", steps=300)
    cfg = load_config(None, smoke(data, tmp_path / "cache", algorithm="mopo", morec=False))
    start_run(cfg, tmp_path / "run", show_progress=False)
    assert flushes()
