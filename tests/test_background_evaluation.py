"""Evaluations in another process (morec/training/background_evaluation.py, ``train.evaluate_in_background``):
the same records as evaluating in the trainer, a resumed run re-evaluates the evaluation that was
in flight at its checkpoint, and a failing evaluation process stops the run with its error."""

from __future__ import annotations

import pytest
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.actor import build_actor
from morec.training.background_evaluation import ActorSpec, BackgroundEvaluator, EvaluationFailed
from morec.training.config import ConfigError, load_config
from morec.training.evaluation import Evaluator
from morec.training.loop import TrainingLoop
from morec.training.pipeline import start_run
from tests.helpers import smoke
from tests.learner_harness import assert_resume_reproduces_the_uninterrupted_run

SPEC = ActorSpec("hopper-medium-v2", "Hopper-v4", "d4rl", obs_dim=11, act_dim=3, hidden_sizes=(32, 32))


def make_policy(hidden_sizes=(32, 32)) -> SACPolicy:
    torch.manual_seed(0)
    evaluator = Evaluator(SPEC.task, SPEC.env_id, SPEC.layout)
    return SACPolicy(actor=build_actor(SPEC.obs_dim, SPEC.act_dim, hidden_sizes), action_space=evaluator.action_space)


def test_scores_equal_the_in_process_evaluation_of_the_weights_sent():
    policy, background = make_policy(), BackgroundEvaluator(SPEC)
    sent = {k: v.clone() for k, v in policy.actor.state_dict().items()}
    try:
        background.submit(policy, 3, seed=5, tag={"epoch": 1})
        with torch.no_grad():  # training goes on: the process evaluates the weights as they were
            for p in policy.actor.parameters():
                p.add_(1.0)
        tag, scores = background.wait()
        assert background.pending is None and tag == {"epoch": 1}
        policy.actor.load_state_dict(sent)
        assert scores == Evaluator(SPEC.task, SPEC.env_id, SPEC.layout)(policy, 3, seed=5)
        with pytest.raises(RuntimeError, match="no evaluation is in flight"):
            background.wait()
    finally:
        background.close()


def test_a_failing_evaluation_process_raises_its_error():
    background = BackgroundEvaluator(SPEC)
    try:
        background.submit(make_policy(hidden_sizes=(16,)), 1, seed=0, tag={"epoch": 3})  # not the spec's actor
        with pytest.raises(EvaluationFailed, match=r"policy of epoch 3 in the background failed: .*size mismatch"):
            background.wait()
        background.submit(make_policy(), 1, seed=0, tag={"epoch": 4})  # the process goes on serving
        background.wait()
        background._process.kill()
        background._process.wait()
        with pytest.raises(
            EvaluationFailed, match=r"epoch 5 in the background failed: the evaluation process ended \(exit code -9\)"
        ):
            background.submit(make_policy(), 1, seed=0, tag={"epoch": 5})
    finally:
        background.close()


def test_background_run_records_what_the_in_process_run_records(hopper_file, tmp_path):  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sets = smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=3, **{"train.eval_every": 1})
    inline = start_run(
        load_config(None, sets + ["train.evaluate_in_background=off"]), tmp_path / "inline", show_progress=False
    )
    assert not inline.evaluator.in_background
    inline_summary = inline.run()  # built and run one after the other: the runs draw from torch's global generator
    seen: list[dict] = []
    background = start_run(
        load_config(None, sets + ["train.evaluate_in_background=on"]), tmp_path / "background", show_progress=False
    )
    assert background.evaluator.in_background
    background_summary = background.run(on_evaluation=seen.append)
    assert background_summary["evaluations"] == inline_summary["evaluations"]
    assert [e["epoch"] for e in background_summary["evaluations"]] == [1, 2, 3] and seen == background_summary[
        "evaluations"
    ]
    events = EventAccumulator(str(tmp_path / "background" / "tb")).Reload()
    assert [e.step for e in events.Scalars("eval/normalized_score")] == [20, 40, 60]


def test_resume_re_evaluates_the_evaluation_in_flight(hopper_file, tmp_path, monkeypatch):  # noqa: F811
    cfg = load_config(
        None,
        smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=3)
        + ["train.evaluate_in_background=on"],
    )
    original = TrainingLoop._save_checkpoint
    in_flight = []
    monkeypatch.setattr(
        TrainingLoop, "_save_checkpoint", lambda self: (in_flight.append(self.evaluator.pending), original(self))
    )
    assert_resume_reproduces_the_uninterrupted_run(cfg, tmp_path, monkeypatch)
    assert in_flight[0] == {"epoch": 1, "gradient_step": 20}  # the killed run's checkpoint held one in flight


def test_bad_switch_is_a_config_error(hopper_file, tmp_path):  # noqa: F811
    with pytest.raises(
        ConfigError, match="train.evaluate_in_background must be 'auto', 'on' or 'off', got 'sometimes'"
    ):
        load_config(None, smoke(hopper_file, tmp_path / "cache") + ["train.evaluate_in_background=sometimes"])
