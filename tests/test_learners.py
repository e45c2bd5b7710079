"""One harness over every learner: MOPO, MOBILE, the seed-stacked learner with one seed (each
algorithm) and behaviour cloning. Each must update (every network changes, finite stats), save and
load to the same next updates, and (where it has one) replay its captured step as the eager one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from tianshou.utils.torch_utils import policy_within_training_step

from morec.learners.bc import BCConfig, BehaviourCloning
from morec.learners.networks import build_actor, gaussian_parameters
from morec.learners.sampler import MixedSampler, StackedSampler
from morec.learners.stacked import StackedSAC
from morec.rollout.buffer import ModelBuffer
from tests.learner_harness import A, O, SimulatedCapture, learner, real_batch


def sampler(seed: int, model_rows: bool = True) -> MixedSampler:
    model = ModelBuffer(500, O, A)
    if model_rows:
        model.add(real_batch(200, seed=seed + 10))
    return MixedSampler(real_batch(300, seed=seed), model, 0.25, torch.Generator().manual_seed(seed))


@dataclass
class Harness:
    """One learner as the harness drives it: ``step()`` one update, its state to save and load."""

    module: torch.nn.Module  # whose parameters the update trains
    step: Callable[[], Any]
    save: Callable[[], dict]
    load: Callable[[dict], None]
    generators: list[torch.Generator] = field(default_factory=list)  # the samplers' generators, saved with the state


def plain(name: str) -> Harness:
    algo, batches = learner(name), sampler(3)

    def step():
        with policy_within_training_step(algo.policy):
            return algo.update(batches, 32)

    def save() -> dict:
        return {"learner": algo.training_state(), "schedulers": [s.state_dict() for s in algo.lr_schedulers]}

    def load(state: dict) -> None:
        algo.load_training_state(state["learner"])
        for scheduler, saved in zip(algo.lr_schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)

    return Harness(algo, step, save, load, [batches.generator])


def stacked(name: str) -> Harness:
    member, batches = learner(name), sampler(3)
    stack = StackedSAC([member])
    seeds = StackedSampler([batches])

    def save() -> dict:
        stack.write_to_seeds()
        return {"learner": member.training_state(), "schedulers": [s.state_dict() for s in member.lr_schedulers]}

    def load(state: dict) -> None:
        member.load_training_state(state["learner"])
        for scheduler, saved in zip(member.lr_schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        stack.read_from_seeds()

    return Harness(stack, lambda: stack.update(seeds, 32), save, load, [batches.generator])


def cloning(_: str) -> Harness:
    torch.manual_seed(0)
    bc, batches = BehaviourCloning(build_actor(O, A, (32, 32)), BCConfig(lr=1e-3)), sampler(3, model_rows=False)
    return Harness(bc, lambda: bc.update(batches, 32), bc.training_state, bc.load_training_state, [batches.generator])


LEARNERS = {
    "MOPO": (plain, "MOPO"),
    "MOBILE": (plain, "MOBILE"),
    "stacked MOPO": (stacked, "MOPO"),
    "stacked MOBILE": (stacked, "MOBILE"),
    "BC": (cloning, None),
}
CAPTURED = [name for name in LEARNERS if name != "BC"]


def build(name: str) -> Harness:
    make, algorithm = LEARNERS[name]
    return make(algorithm)


def values(stats) -> list[float]:
    return [float(v) for v in vars(stats).values() if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("name", LEARNERS)
def test_an_update_trains_every_network_and_its_stats_are_finite(name):
    harness = build(name)
    before = {
        k: v.detach().clone()
        for k, v in harness.module.named_parameters()
        if v.requires_grad and not k.startswith("dynamics.")
    }  # MOBILE's dynamics only sample
    stats = harness.step()
    changed = {k for k, v in harness.module.named_parameters() if k in before and not torch.equal(v, before[k])}
    assert changed == set(before)
    assert all(torch.isfinite(torch.tensor(v)) for v in values(stats))


@pytest.mark.parametrize("name", LEARNERS)
def test_a_saved_learner_loads_to_the_same_next_updates(name):
    harness = build(name)
    for _ in range(3):
        harness.step()
    state = copy.deepcopy(harness.save())  # as a checkpoint file holds it, not the live tensors
    rng = (torch.get_rng_state(), [g.get_state() for g in harness.generators])
    expected = [values(harness.step()) for _ in range(3)]
    final = {k: v.detach().clone() for k, v in harness.module.state_dict().items()}
    fresh = build(name)  # another learner (a resumed run), given the saved state and random state
    fresh.load(state)
    torch.set_rng_state(rng[0])
    for generator, saved in zip(fresh.generators, rng[1]):
        generator.set_state(saved)
    assert [values(fresh.step()) for _ in range(3)] == expected
    for key, value in fresh.module.state_dict().items():
        torch.testing.assert_close(value, final[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", CAPTURED)
def test_the_captured_step_replays_the_eager_one(name):
    eager, captured = build(name), build(name)
    captured.module.captured_update = SimulatedCapture(captured.module)
    runs = []
    for harness in (eager, captured):
        torch.manual_seed(7)
        runs.append([values(harness.step()) for _ in range(4)])
    assert runs[0] == runs[1]
    for (key, a), b in zip(eager.module.state_dict().items(), captured.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)


def test_the_actors_gaussian_is_tianshous_forward_in_float32_and_under_bfloat16_autocast():
    torch.manual_seed(0)
    actor, obs = build_actor(O, A, (32, 32)), torch.randn(50, O) * 3
    (mu, sigma), _ = actor(obs)
    got = gaussian_parameters(actor, obs)
    assert torch.equal(got[0], mu) and torch.equal(got[1], sigma)
    want_grads = torch.autograd.grad((mu - sigma).sum(), list(actor.parameters()))
    got_grads = torch.autograd.grad((got[0] - got[1]).sum(), list(actor.parameters()))
    assert all(torch.equal(g, w) for g, w in zip(got_grads, want_grads))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # no float32 round trip in the heads
        (mu, sigma), _ = actor(obs)
        got = gaussian_parameters(actor, obs)
    assert got[0].dtype == mu.dtype == torch.bfloat16
    assert torch.equal(got[0], mu) and torch.equal(got[1], sigma)
