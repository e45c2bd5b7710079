"""The CUDA-graph update (morec/learners/cuda_graph.py). On the CPU a stand-in graph reruns the recorded
step at each replay, which checks everything but the capture itself: the static row indices, the
warm-up steps undone, a recapture when the model buffer appears, the outputs rewritten in place.
On CUDA the real capture runs (same seed, same result; close to the eager step)."""

from __future__ import annotations

import pytest
import torch
from tianshou.utils.torch_utils import policy_within_training_step

from morec import ModelBuffer
from morec.errors import UserError
from morec.learners import MixedSampler
from morec.learners.cuda_graph import CapturedUpdate
from tests.learner_harness import STAT_FIELDS, SimulatedCapture, assert_close_in_mean, learner, on, real_batch


def run(algo, steps: int, device: str = "cpu", model_from: int = 2) -> list[dict[str, float]]:
    """``steps`` updates on a fresh sampler; the model buffer is empty for the first ``model_from``."""
    real = on(device, real_batch())
    model = ModelBuffer(1000, real.observations.shape[1], real.actions.shape[1], device)
    sampler = MixedSampler(real, model, 0.5, torch.Generator(device=device).manual_seed(3))
    torch.manual_seed(4)
    if device == "cuda":
        torch.cuda.manual_seed(4)
    history = []
    with policy_within_training_step(algo.policy):
        for step in range(steps):
            if step == model_from:
                model.add(on(device, real_batch(seed=1)))
            stats = algo.update(sampler, 32)
            history.append({name: float(getattr(stats, name)) for name in STAT_FIELDS})
    return history


@pytest.mark.parametrize("cls", ["MOPO", "MOBILE"])
def test_replayed_steps_equal_eager_steps_bit_for_bit(cls):
    eager, captured = learner(cls), learner(cls)
    captured.captured_update = SimulatedCapture(captured)
    assert run(eager, 6) == run(captured, 6)
    assert captured.captured_update.captures == 2  # all real rows before the model buffer fills, then mixed
    for (name, a), b in zip(eager.training_state().items(), captured.training_state().values()):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(
        eager.training_state()["_optimizers"], captured.training_state()["_optimizers"], rtol=0, atol=0
    )


def test_checkpoints_hold_float_learning_rates_and_a_failed_capture_runs_eagerly():
    algo = learner("MOBILE")
    for optim in algo.torch_optimizers:  # what a captured run's optimizers hold
        for group in optim.param_groups:
            group["lr"], group["capturable"] = torch.tensor(group["lr"]), True
    for state in algo.training_state()["_optimizers"]:
        assert all(type(g["lr"]) is float and g["capturable"] is False for g in state["param_groups"])

    class Failing(SimulatedCapture):
        def _record(self, step):
            raise RuntimeError("operation not permitted when stream is capturing")

    algo = learner("MOBILE")
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    algo.captured_update = Failing(algo)
    with pytest.raises(
        UserError,
        match=r"train.compile=on: the gradient step could not be captured as a CUDA graph "
        r"\(operation not permitted when stream is capturing\); train.compile=auto runs it eagerly",
    ):
        run(algo, 1)
    for name, value in algo.state_dict().items():  # the warm-up steps were undone
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)
    algo.captured_update, algo._eager_on_capture_failure = Failing(algo), True
    with pytest.warns(UserWarning, match="could not be captured as a CUDA graph, so it runs eagerly"):
        assert len(run(algo, 3)) == 3
    assert algo.captured_update is None
    with pytest.raises(ValueError, match="needs the learner on a CUDA device"):
        CapturedUpdate(algo)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", ["MOPO", "MOBILE"])
def test_cuda_graph_same_seed_same_result_and_close_to_eager(cls):
    def history(graphed: bool) -> list[dict[str, float]]:
        algo = learner(cls, "cuda")
        if graphed:
            algo.capture_cuda_graph()
        return run(algo, 30, device="cuda")

    first, again, eager = history(True), history(True), history(False)
    assert first == again
    assert_close_in_mean(first, eager)
