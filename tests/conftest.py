"""Fixtures shared by several test modules (module-scoped: each module trains its own)."""

from __future__ import annotations

import pytest

from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo, fit_ensemble
from tests.fakes import linear_system
from tests.helpers import random_dataset_file


# ------------------------------------------------------------------------------------ pipeline
@pytest.fixture(scope="module")
def hopper_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return random_dataset_file(root / "hopper.hdf5")


@pytest.fixture(scope="module")
def trained():
    """A deliberately under-trained ensemble (3 epochs): its samples are visibly off, so there is
    something to discriminate. (Against a near-perfect generator the discriminator sees no
    difference and learns nothing about gross errors either; see the issue-4 note.)"""
    ds = linear_system(n=3000, noise=0.01)
    dyn = EnsembleDynamics(
        TaskInfo(4, 2),
        EnsembleConfig(num_members=3, num_elites=2, hidden_sizes=(32, 32), weight_decays=(1e-5,) * 3, max_epochs=3),
        seed=0,
    )
    fit_ensemble(dyn, ds, show_progress=False)
    return ds, dyn
