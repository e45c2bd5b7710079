"""Gradient steps per second of MOPO and MOBILE (batch 256, 256x256 networks, the published
7 x 4 x 200 ensemble for MOBILE's 5 elites x 10 samples) and how much of a step is spent in
tianshou's code rather than ours and torch's; and, side by side, eager against compiled networks
(``train.compile``: ``compiled.<algo>.compiled_vs_eager``, a ratio of steps/s), on CUDA the whole
step replayed as one captured CUDA graph against eager steps (what ``train.compile`` does there:
``cuda_graph.<algo>.graph_vs_eager``, with and without compiled networks inside the graph) and
MOBILE's penalty in float32 against bfloat16 (``mobile.penalty_dtype``:
``penalty_dtype.bfloat16_vs_float32``); and the seconds one evaluation takes (10 HalfCheetah
episodes of 1,000 steps) in the trainer's loop against tianshou's Collector, which it replaced
(``evaluation.collector_vs_lean``), how much of it evaluating in a background process hides
behind training (``background_evaluation.hidden_share``), and S seeds updated as one stacked
learner against S learners stepped one after another (``stacked_seeds.<algo>.stacked_vs_separate``).
Prints one JSON object.

    python scripts/bench_train.py [--device cpu|cuda] [--steps 200] [--threads 1] [--seeds 8] [--only SECTION,...]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.data import Collector, CollectStats
from tianshou.env import DummyVectorEnv
from tianshou.utils.torch_utils import policy_within_training_step

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec import ModelBuffer, TransitionBatch  # noqa: E402
from morec.allocator import keep_freed_memory  # noqa: E402
from morec.denormals import flush_denormals  # noqa: E402
from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo  # noqa: E402
from morec.learners import MOBILE, MOPO, AgentConfig, MixedSampler, MobileConfig, TwinCritic, build_actor  # noqa: E402
from morec.learners.stacked import StackedSAC, StackedSampler  # noqa: E402
from morec.training.background_evaluation import ActorSpec, BackgroundEvaluator  # noqa: E402
from morec.training.evaluation import MAX_ENVS, evaluate_policy, make_eval_env  # noqa: E402

OBS, ACT = 11, 3


def make(cls, device, penalty_dtype: str = "float32"):
    torch.manual_seed(0)
    policy = SACPolicy(actor=build_actor(OBS, ACT, (256, 256)), action_space=gym.spaces.Box(-1, 1, (ACT,)))
    kw = {}
    if cls is MOBILE:
        kw = {
            "dynamics": EnsembleDynamics(TaskInfo(OBS, ACT), EnsembleConfig(), device=device).eval(),
            "mobile": MobileConfig(num_samples=10, penalty_dtype=penalty_dtype),
        }
    return cls(
        policy=policy,
        critic=TwinCritic(OBS, ACT, (256, 256)),
        config=AgentConfig(),
        act_dim=ACT,
        total_steps=10**6,
        **kw,
    ).to(device)


def data(device, n=100_000) -> tuple[TransitionBatch, ModelBuffer]:
    g = torch.Generator().manual_seed(0)
    real = TransitionBatch(
        torch.randn(n, OBS, generator=g),
        torch.rand(n, ACT, generator=g) * 2 - 1,
        torch.randn(n, generator=g),
        torch.randn(n, OBS, generator=g),
        torch.rand(n, generator=g) < 0.01,
    )
    real = TransitionBatch(*(getattr(real, f).to(device) for f in ModelBuffer.FIELDS))
    model = ModelBuffer(n, OBS, ACT, device)
    model.add(real)
    return real, model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def side_by_side(algos: dict, device: str, steps: int, blocks: int = 6) -> dict[str, float]:
    """Gradient steps/s of each named learner, measured in alternating blocks of ``steps // blocks``
    steps so that all see the same machine load (block 0 warms up, and compiles)."""
    real, model = data(device)
    samplers = {name: MixedSampler(real, model, 0.05, torch.Generator(device=device).manual_seed(0)) for name in algos}
    seconds = dict.fromkeys(algos, 0.0)
    for block in range(blocks + 1):
        for name, algo in algos.items():
            with policy_within_training_step(algo.policy):
                sync(device)
                t0 = time.perf_counter()
                for _ in range(max(steps // blocks, 1) if block else 5):
                    algo.update(samplers[name], 256)
                sync(device)
                seconds[name] += (time.perf_counter() - t0) if block else 0.0
    return {name: blocks * max(steps // blocks, 1) / sec for name, sec in seconds.items()}


def compiled_vs_eager(cls, device: str, steps: int) -> dict:
    """Eager against compiled networks (as ``train.compile: on``)."""
    compiled = make(cls, device)
    compiled.compile_networks()
    rate = side_by_side({"eager": make(cls, device), "compiled": compiled}, device, steps)
    return {
        "eager_steps_per_s": round(rate["eager"], 1),
        "compiled_steps_per_s": round(rate["compiled"], 1),
        "compiled_vs_eager": round(rate["compiled"] / rate["eager"], 3),
    }


def graph_vs_eager(cls, device: str, steps: int, penalty_dtype: str = "float32") -> dict:
    """Eager steps against the step captured as a CUDA graph, with eager and with compiled networks."""
    if not device.startswith("cuda"):
        return {"skipped": "CUDA graphs need a CUDA device"}
    graph, graph_compiled = make(cls, device, penalty_dtype), make(cls, device, penalty_dtype)
    graph.capture_cuda_graph()
    graph_compiled.compile_networks()
    graph_compiled.capture_cuda_graph()
    rate = side_by_side(
        {"eager": make(cls, device, penalty_dtype), "graph": graph, "graph_compiled": graph_compiled}, device, steps
    )
    return {
        **{f"{name}_steps_per_s": round(r, 1) for name, r in rate.items()},
        "graph_vs_eager": round(rate["graph"] / rate["eager"], 3),
        "graph_compiled_vs_eager": round(rate["graph_compiled"] / rate["eager"], 3),
    }


def penalty_dtype_vs_float32(device: str, steps: int) -> dict:
    """MOBILE with its penalty in float32 against bfloat16 (``mobile.penalty_dtype``)."""
    rate = side_by_side({dtype: make(MOBILE, device, dtype) for dtype in ("float32", "bfloat16")}, device, steps)
    return {
        "float32_steps_per_s": round(rate["float32"], 1),
        "bfloat16_steps_per_s": round(rate["bfloat16"], 1),
        "bfloat16_vs_float32": round(rate["bfloat16"] / rate["float32"], 3),
    }


def evaluation_seconds(device: str, rounds: int = 3) -> dict:
    """Seconds per evaluation (10 HalfCheetah-v4 episodes, each 1,000 steps, an untrained
    256x256 actor) of the trainer's loop and of tianshou's Collector, alternating, after one
    untimed call of each (the Collector's first call also compiles tianshou's numba helpers)."""
    env_id, layout, episodes = "HalfCheetah-v4", "d4rl", 10
    env = make_eval_env(env_id, layout)
    torch.manual_seed(0)
    actor = build_actor(env.observation_space.shape[0], env.action_space.shape[0], (256, 256))
    policy = SACPolicy(actor=actor, action_space=env.action_space).to(device)

    def collector(seed: int):
        envs = DummyVectorEnv([lambda: make_eval_env(env_id, layout) for _ in range(MAX_ENVS)])
        envs.seed(seed)
        stats = Collector[CollectStats](policy, envs).collect(n_episode=episodes, reset_before_collect=True)
        envs.close()
        return stats.returns

    runs = {"lean": lambda seed: evaluate_policy(policy, env_id, layout, episodes, seed), "collector": collector}
    seconds = dict.fromkeys(runs, 0.0)
    for r in range(rounds + 1):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(r)
            seconds[name] += (time.perf_counter() - t0) if r else 0.0
    return {
        "episodes": episodes,
        "episode_steps": 1000,
        **{f"{name}_seconds": round(sec / rounds, 3) for name, sec in seconds.items()},
        "collector_vs_lean": round(seconds["collector"] / seconds["lean"], 2),
    }


def background_evaluation_overlap(device: str, steps: int, rounds: int = 5) -> dict:
    """How much of an evaluation (10 HalfCheetah episodes) the background process hides behind
    ``steps`` MOPO gradient steps, in ``rounds`` alternating rounds (``train.evaluate_in_background``): the steps
    alone, the
    evaluation alone, then both at once. ``hidden_share`` 1 means the evaluation cost no time
    (it needs a core the learner does not use)."""
    env_id, layout = "HalfCheetah-v4", "d4rl"
    env = make_eval_env(env_id, layout)
    spec = ActorSpec(
        "halfcheetah-medium-v2", env_id, layout, env.observation_space.shape[0], env.action_space.shape[0], (256, 256)
    )
    torch.manual_seed(0)
    policy = SACPolicy(actor=build_actor(spec.obs_dim, spec.act_dim, spec.hidden_sizes), action_space=env.action_space)
    algo, (real, model) = make(MOPO, device), data(device)
    sampler = MixedSampler(real, model, 0.05, torch.Generator(device=device).manual_seed(0))
    background = BackgroundEvaluator(spec)

    def train() -> None:
        with policy_within_training_step(algo.policy):
            for _ in range(steps):
                algo.update(sampler, 256)
        sync(device)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    seconds = {"train": 0.0, "evaluation": 0.0, "both": 0.0}
    try:
        background.submit(policy, 10, 0, {})  # starts the process; not timed
        background.wait()
        for r in range(rounds):  # alternating, so that all three see the same machine load
            seconds["train"] += timed(train)
            seconds["evaluation"] += timed(lambda r=r: (background.submit(policy, 10, r, {}), background.wait()))
            seconds["both"] += timed(lambda r=r: (background.submit(policy, 10, r, {}), train(), background.wait()))
    finally:
        background.close()
    train_alone, evaluation_alone, both = (seconds[k] / rounds for k in ("train", "evaluation", "both"))
    return {
        "gradient_steps": steps,
        "rounds": rounds,
        "train_seconds": round(train_alone, 2),
        "evaluation_seconds": round(evaluation_alone, 2),
        "train_and_background_evaluation_seconds": round(both, 2),
        "hidden_share": round((train_alone + evaluation_alone - both) / evaluation_alone, 2),
    }


def stacked_vs_separate(cls, device: str, steps: int, seeds: int) -> dict:
    """``seeds`` learners updated as one stacked learner (``train.stack_seeds``) against the same
    learners stepped one after another (``--seeds`` without stacking; on one CPU thread, what
    separate processes sharing the core amount to), in alternating blocks; on CUDA both replay their
    steps as CUDA graphs, as ``train.compile: auto`` does. Steps/s count every seed's step."""
    real, model = data(device)
    samplers = [MixedSampler(real, model, 0.05, torch.Generator(device=device).manual_seed(i)) for i in range(seeds)]
    separate = [make(cls, device) for _ in range(seeds)]
    stack, stacked_sampler = StackedSAC([make(cls, device) for _ in range(seeds)]), StackedSampler(samplers)
    if device.startswith("cuda"):
        for algo in (*separate, stack):
            algo.capture_cuda_graph()

    def step_separately() -> None:
        for algo, sampler in zip(separate, samplers):
            with policy_within_training_step(algo.policy):
                algo.update(sampler, 256)

    runs = {"separate": step_separately, "stacked": lambda: stack.update(stacked_sampler, 256)}
    seconds, blocks = dict.fromkeys(runs, 0.0), 4
    for block in range(blocks + 1):  # block 0 warms up (and captures)
        for name, run in runs.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(max(steps // blocks, 1) if block else 3):
                run()
            sync(device)
            seconds[name] += (time.perf_counter() - t0) if block else 0.0
    rate = {name: seeds * blocks * max(steps // blocks, 1) / sec for name, sec in seconds.items()}
    return {
        "seeds": seeds,
        "separate_steps_per_s": round(rate["separate"], 1),
        "stacked_steps_per_s": round(rate["stacked"], 1),
        "stacked_vs_separate": round(rate["stacked"] / rate["separate"], 3),
    }


def measure(cls, device: str, steps: int) -> dict:
    algo = make(cls, device)
    real, model = data(device)
    sampler = MixedSampler(real, model, 0.05, torch.Generator(device=device).manual_seed(0))
    with policy_within_training_step(algo.policy):
        for _ in range(5):
            algo.update(sampler, 256)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            algo.update(sampler, 256)
        sync(device)
        seconds = time.perf_counter() - t0
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(max(steps // 4, 5)):
            algo.update(sampler, 256)
        sync(device)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # own time of every function
    in_tianshou = sum(v[2] for k, v in stats.stats.items() if "tianshou" in k[0])
    return {
        "gradient_steps_per_s": round(steps / seconds, 1),
        "ms_per_step": round(1000 * seconds / steps, 2),
        "share_of_step_in_tianshou_code": round(in_tianshou / total, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", help="comma-separated sections to run (default: all)")
    p.add_argument("--seeds", type=int, default=8, help="seeds in the stacked_seeds section")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `morec train` does
    flush_denormals()  # as training does
    mobile_steps = max(args.steps // 4, 12)
    sections = {
        "mopo": lambda: measure(MOPO, args.device, args.steps),
        "mobile_5_elites_x_10_samples": lambda: measure(MOBILE, args.device, mobile_steps),
        "cuda_graph": lambda: {
            "mopo": graph_vs_eager(MOPO, args.device, args.steps),
            "mobile_5_elites_x_10_samples": graph_vs_eager(MOBILE, args.device, mobile_steps),
            "mobile_bfloat16_penalty": graph_vs_eager(MOBILE, args.device, mobile_steps, "bfloat16"),
        },
        "compiled": lambda: {
            "mopo": compiled_vs_eager(MOPO, args.device, args.steps),
            "mobile_5_elites_x_10_samples": compiled_vs_eager(MOBILE, args.device, mobile_steps),
        },
        "stacked_seeds": lambda: {
            "mopo": stacked_vs_separate(MOPO, args.device, max(args.steps // 4, 8), args.seeds),
            "mobile_5_elites_x_10_samples": stacked_vs_separate(
                MOBILE, args.device, max(mobile_steps // 8, 4), args.seeds
            ),
        },
        "penalty_dtype": lambda: {"mobile_5_elites_x_10_samples": penalty_dtype_vs_float32(args.device, mobile_steps)},
        "evaluation": lambda: evaluation_seconds(args.device),
        "background_evaluation": lambda: background_evaluation_overlap(args.device, args.steps),
    }
    only = args.only.split(",") if args.only else list(sections)
    unknown = sorted(set(only) - set(sections))
    if unknown:
        p.error(f"--only: unknown section(s) {unknown}; choose from {sorted(sections)}")
    result = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "batch_size": 256,
        **{name: sections[name]() for name in only},
        "note": "share_of_step_in_tianshou_code: own (not cumulative) Python time in tianshou modules under cProfile; "
        "the update itself is ours, tianshou supplies the Algorithm/Optimizer wrappers and SACPolicy",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
