"""The code a result names (this checkout's commit, or the installed version outside a checkout) and
the processor it names."""

from __future__ import annotations

import subprocess

import pytest
import torch

import morec
from morec import cpu_features, provenance
from morec.cpu_features import cpuinfo_field


def test_a_checkout_names_its_commit_and_an_installed_copy_its_version(monkeypatch, tmp_path):
    provenance.code_version.cache_clear()
    head = subprocess.run(
        ["git", "-C", str(provenance.PACKAGE_DIR), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    version = provenance.code_version()
    if head:  # tests run from a checkout (CI's clean clone included)
        assert head[:7] in version  # e.g. 364ee04, 364ee04-dirty, v0.1-3-g364ee04
    else:
        assert version == f"morec {morec.__version__}"

    provenance.code_version.cache_clear()  # a copy no checkout holds (site-packages, or a venv inside a repository)
    monkeypatch.setattr(provenance, "PACKAGE_DIR", tmp_path / "morec")
    (tmp_path / "morec").mkdir()
    assert provenance.code_version() == f"morec {morec.__version__}"
    provenance.code_version.cache_clear()


def test_the_machine_names_the_cpu_and_the_kernels_torch_uses_on_it(monkeypatch, tmp_path):
    name = provenance.machine("cpu")
    capability = torch.backends.cpu.get_cpu_capability()
    assert name.endswith(f" ({capability})") and len(name) > len(capability) + 3

    cpuinfo_field.cache_clear()  # no /proc/cpuinfo (not Linux): what platform knows
    monkeypatch.setattr(cpu_features, "CPUINFO", tmp_path / "no-cpuinfo")
    monkeypatch.setattr(provenance.platform, "processor", lambda: "arm")
    assert provenance.machine() == f"arm ({capability})"
    cpuinfo_field.cache_clear()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_machine_of_a_gpu_run_is_the_gpu():
    assert provenance.machine("cuda") == torch.cuda.get_device_name(0)
