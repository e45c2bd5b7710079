"""The code a result names: this checkout's commit, or the installed version outside a checkout."""

from __future__ import annotations

import subprocess

import morec
from morec import provenance


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
