"""Row blocks: the partition itself, and the two networks that run in blocks on the CPU giving the
whole batch's numbers (to float rounding; the benchmark reports whether they are bit-identical)."""

from __future__ import annotations

import pytest
import torch

from morec.dynamics.ensemble import EnsembleConfig, EnsembleDynamics, TaskInfo
from morec.dynamics_reward.model import Discriminator
from morec.row_blocks import CPU_BLOCK_ROWS, row_blocks


@pytest.mark.parametrize("num_rows", [0, 1, 2, 7, 8, 9, 16, 17, 25])
def test_blocks_cover_every_row_once_in_order_and_never_leave_one_row_alone(num_rows):
    blocks = row_blocks(num_rows, 8)
    covered = [row for block in blocks for row in range(num_rows)[block]]
    assert covered == list(range(num_rows))
    sizes = [block.stop - block.start for block in blocks]
    assert all(size <= 8 + 1 for size in sizes)
    assert num_rows <= 1 or 1 not in sizes
    assert sizes[:-1] == [8] * (len(sizes) - 1)


def test_the_default_block_is_the_cpu_block():
    assert row_blocks(3 * CPU_BLOCK_ROWS) == [slice(i * CPU_BLOCK_ROWS, (i + 1) * CPU_BLOCK_ROWS) for i in range(3)]


def test_the_dynamics_reward_scores_in_blocks_as_the_whole_batch_does():
    net = Discriminator(3, 6, (32, 32), generator=torch.Generator().manual_seed(0))
    x = torch.randn(41, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = net.member_logits(x, block_rows=len(x))
        for block_rows in (4, 8, 40):
            torch.testing.assert_close(net.member_logits(x, block_rows=block_rows), whole, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(net.member_logits(x), whole, rtol=1e-6, atol=1e-6)


def small_ensemble() -> EnsembleDynamics:
    config = EnsembleConfig(num_members=4, num_elites=2, hidden_sizes=(16, 16), weight_decays=(0.0, 0.0, 0.0))
    return EnsembleDynamics(TaskInfo(4, 2), config)


def test_the_ensemble_predicts_in_blocks_as_the_whole_batch_does():
    model = small_ensemble()
    x = torch.randn(37, 6, generator=torch.Generator().manual_seed(2))
    members = torch.tensor([2, 0])
    with torch.no_grad():
        whole = model.forward_normalised(x, members, block_rows=len(x))
        blocked = model.forward_normalised(x, members, block_rows=8)
    for got, want in zip(blocked, whole, strict=True):
        assert got.shape == want.shape == (2, 37, 5)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_only_cpu_inference_runs_in_blocks(monkeypatch):
    """Training (autograd on) keeps the whole batch, so its products and gradients are unchanged."""
    model = small_ensemble()
    seen: list[int] = []
    run = model._run
    monkeypatch.setattr(model, "_run", lambda x, layers: seen.append(x.shape[-2]) or run(x, layers))
    x = torch.randn(2 * CPU_BLOCK_ROWS + 5, 6)
    with torch.no_grad():
        model.forward_normalised(x)
    assert seen == [CPU_BLOCK_ROWS, CPU_BLOCK_ROWS, 5]
    seen.clear()
    model.forward_normalised(x)
    model.forward_normalised(x.expand(4, -1, -1))
    assert seen == [len(x), len(x)]
