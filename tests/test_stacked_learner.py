"""The stacked learner (morec/learners/stacked.py): a stack of one seed is the plain learner to float
rounding, the seeds of a stack do not touch each other, the seeds' learners receive its state, a
seed whose model buffer is empty steps on its own, and a replayed (captured) stacked step is the
eager one."""

from __future__ import annotations

import pytest
import torch
from tianshou.utils.torch_utils import policy_within_training_step

from morec import ModelBuffer
from morec.learners import MixedSampler
from morec.learners.stacked import StackedSAC, StackedSampler
from tests.helpers import DEVICES, assert_records_close
from tests.learner_harness import (
    STAT_FIELDS,
    A,
    O,
    SimulatedCapture,
    assert_close_in_mean,
    learner,
    make_algo,
    on,
    real_batch,
)


def sampler(seed: int, device: str = "cpu", model_rows: bool = True) -> MixedSampler:
    real = on(device, real_batch())
    model = ModelBuffer(1000, O, A, device)
    if model_rows:
        model.add(on(device, real_batch(seed=1)))
    return MixedSampler(real, model, 0.5, torch.Generator(device=device).manual_seed(seed))


def plain_history(algo, batches: MixedSampler, steps: int) -> list[dict[str, float]]:
    history = []
    with policy_within_training_step(algo.policy):
        for _ in range(steps):
            stats = algo.update(batches, 32)
            history.append({name: float(getattr(stats, name)) for name in STAT_FIELDS})
    return history


def stacked_history(
    stack: StackedSAC, batches: StackedSampler, steps: int, seed_index: int = 0
) -> list[dict[str, float]]:
    history = []
    for _ in range(steps):
        stats = StackedSAC.seed_stats(stack.update(batches, 32), seed_index)
        history.append({name: float(getattr(stats, name)) for name in STAT_FIELDS})
    return history


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls", ["MOPO", "MOBILE"])
def test_a_stack_of_one_seed_is_the_plain_learner(cls, device):
    plain, member = learner(cls, device), learner(cls, device)
    stack = StackedSAC([member])
    torch.manual_seed(4)
    expected = plain_history(plain, sampler(3, device), 20)
    torch.manual_seed(4)
    got = stacked_history(stack, StackedSampler([sampler(3, device)]), 20)
    for a, b in zip(expected, got):
        assert_records_close(a, b, rel=1e-4, abs=1e-5)
    stack.write_to_seeds()
    for (name, a), b in zip(plain.state_dict().items(), member.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    for a, b in zip(plain.training_state()["_optimizers"], member.training_state()["_optimizers"]):
        assert a["param_groups"] == b["param_groups"]  # the same learning rates, as floats
        assert a["state"].keys() == b["state"].keys()
        for index in a["state"]:
            assert float(a["state"][index]["step"]) == float(b["state"][index]["step"]) == 20
            torch.testing.assert_close(a["state"][index]["exp_avg"], b["state"][index]["exp_avg"], rtol=1e-3, atol=1e-6)
    assert plain.lr_schedulers[0].state_dict() == member.lr_schedulers[0].state_dict()


@pytest.mark.parametrize("cls", ["MOPO", "MOBILE"])
def test_seeds_in_a_stack_do_not_touch_each_other(cls):
    """Seed 0's run is the same bit for bit whatever seed 1 is: its own batch, weights and moments."""

    def seed_zero_after(other: int) -> tuple[list, dict]:
        first, second = learner(cls), learner(cls)
        with torch.no_grad():
            for p in second.parameters():
                p.add_(0.1 * other)
        stack = StackedSAC([first, second])
        torch.manual_seed(4)
        history = stacked_history(stack, StackedSampler([sampler(3), sampler(3 + other)]), 8)
        stack.write_to_seeds()
        return history, first.state_dict()

    (history_a, state_a), (history_b, state_b) = seed_zero_after(1), seed_zero_after(2)
    assert history_a == history_b
    torch.testing.assert_close(state_a, state_b, rtol=0, atol=0)


def test_the_seeds_learners_get_the_stack_state_and_give_it_back():
    first, second = learner("MOBILE"), learner("MOBILE")
    with torch.no_grad():
        for p in second.parameters():
            p.mul_(1.5)
    stack = StackedSAC([first, second])
    stacked_history(stack, StackedSampler([sampler(3), sampler(4)]), 3)
    stack.write_to_seeds()
    assert not torch.equal(first.actor.mu.model[0].weight, second.actor.mu.model[0].weight)
    torch.testing.assert_close(second.actor.mu.model[0].weight, stack.actor.mu_weight[1], rtol=0, atol=0)
    torch.testing.assert_close(second.critic_target.layers[1].bias, stack.critic_target.biases[1][1], rtol=0, atol=0)
    assert float(second.log_alpha.value.detach()) == float(stack.log_alpha.value[1].detach())
    second_state = second.training_state()
    rebuilt = StackedSAC([learner("MOBILE"), learner("MOBILE")])
    rebuilt.learners[1].load_training_state(second_state)
    rebuilt.learners[0].load_training_state(first.training_state())
    rebuilt.learners[0].lr_schedulers[0].load_state_dict(first.lr_schedulers[0].state_dict())
    rebuilt.read_from_seeds()  # what a resumed run does
    torch.testing.assert_close(rebuilt.state_dict(), stack.state_dict(), rtol=0, atol=0)
    for a, b in zip(rebuilt._optimizers, stack._optimizers):
        torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)
    assert rebuilt.lr_schedulers[0].state_dict() == stack.lr_schedulers[0].state_dict()


def test_a_seed_without_model_rows_steps_on_its_own():
    """Seed 1's model buffer is empty (its rollouts gave nothing yet): its batch is all real rows, so
    each seed steps with its own learner, and the stack takes their states back."""
    first, second = learner("MOPO"), learner("MOPO")
    stack = StackedSAC([first, second])
    before = stack.actor.mu_weight.detach().clone()
    stats = stack.update(StackedSampler([sampler(3), sampler(4, model_rows=False)]), 32)
    assert float(stats.penalty_mean[0]) == 0.0 and stats.critic_loss.shape == (2,)
    assert not torch.equal(stack.actor.mu_weight[0], before[0]) and not torch.equal(stack.actor.mu_weight[1], before[1])
    torch.testing.assert_close(stack.actor.mu_weight[1], second.actor.mu.model[0].weight, rtol=0, atol=0)
    assert all(float(optim.state_dict()["state"][0]["step"]) == 1 for optim in stack._optimizers)


@pytest.mark.parametrize("cls", ["MOPO", "MOBILE"])
def test_replayed_stacked_steps_equal_eager_ones_bit_for_bit(cls):
    eager, captured = StackedSAC([learner(cls), learner(cls)]), StackedSAC([learner(cls), learner(cls)])
    captured.captured_update = SimulatedCapture(captured)
    runs = []
    for stack in (eager, captured):
        torch.manual_seed(4)
        runs.append(stacked_history(stack, StackedSampler([sampler(3), sampler(4)]), 5, seed_index=1))
    assert runs[0] == runs[1]
    torch.testing.assert_close(eager.state_dict(), captured.state_dict(), rtol=0, atol=0)


def test_learners_of_one_class_stack_whatever_the_class():
    with pytest.raises(ValueError, match=r"stacks learners of one class, got \['MOBILE', 'MOPO'\]"):
        StackedSAC([learner("MOPO"), learner("MOBILE")])
    from morec.learners.sac import ModelBasedSAC

    class ShiftedReward(ModelBasedSAC):
        """A new algorithm written once: its penalty uses the networks it is given, so the stack needs no code of its
        own."""

        def model_penalty(self, rows, nets, sample_next):
            act, _ = nets.actor_sample(rows.observations)
            return 0.1 * nets.critic_target(rows.observations, act).min(-2).values.abs()

    plain, member = make_algo(ShiftedReward), make_algo(ShiftedReward)
    member.load_state_dict(plain.state_dict())
    torch.manual_seed(4)
    expected = plain_history(plain, sampler(3), 10)
    torch.manual_seed(4)
    got = stacked_history(StackedSAC([member]), StackedSampler([sampler(3)]), 10)
    for a, b in zip(expected, got):
        assert_records_close(a, b, rel=1e-4, abs=1e-5)
    assert any(record["penalty_mean"] > 0 for record in got)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", ["MOPO", "MOBILE"])
def test_a_stack_as_a_cuda_graph_same_seed_same_result_and_close_to_eager(cls):
    def history(graphed: bool) -> list[dict[str, float]]:
        stack = StackedSAC([learner(cls, "cuda"), learner(cls, "cuda")])
        if graphed:
            stack.capture_cuda_graph()
        torch.manual_seed(4)
        torch.cuda.manual_seed(4)
        return stacked_history(stack, StackedSampler([sampler(3, "cuda"), sampler(4, "cuda")]), 30, seed_index=1)

    first, again, eager = history(True), history(True), history(False)
    assert first == again
    assert_close_in_mean(first, eager)
