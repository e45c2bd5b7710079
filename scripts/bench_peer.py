"""morec against OfflineRL-Kit on the same machine, data sizes and thread count, in one process:
gradient steps per second of MOBILE and MOPO (SAC) with the published settings (batch 256, real
ratio 0.05, 256x256 actor and twin critics, 7 x 4 x 200 ensemble with 5 elites, MOBILE's 10
next-state samples per elite). A step is what each library's trainer does per gradient step:
sample the real and model batches, then update. Blocks of steps alternate between the two
libraries so that load drift hits both alike. Run once with glibc's default allocator and once
with ``morec.allocator.keep_freed_memory()`` (which ``morec train`` applies), in separate child
processes. Prints one JSON object.

OfflineRL-Kit is not a dependency: fetch a checkout yourself into a temporary directory and pass it
(it needs ``pip install "gym<=0.24.1"``). Nothing of it is copied here.

Also, in the same processes: MOPO rollout throughput (50,000 start states x 5 steps) and the
seconds per epoch of ensemble training on 100,000 transitions. ``--epochs-to-stop FILE`` instead
trains both libraries' ensembles to their own early stop on a D4RL-format file (``--libraries``
picks one of them).

    python scripts/bench_peer.py /tmp/OfflineRL-Kit [--steps 20] [--blocks 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OBS, ACT, BATCH, REAL_RATIO, N_DATA = 11, 3, 256, 0.05, 100_000


def morec_steppers(device: str):
    """``{"mobile": step(), "mobile_bfloat16_penalty": step(), "mopo": step()}`` for morec, on random
    data of the benchmark's sizes (``mobile_bfloat16_penalty``: ``mobile.penalty_dtype: bfloat16``)."""
    import torch
    from tianshou.utils.torch_utils import policy_within_training_step

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_train import data, make  # the same construction bench_train.py times

    from morec.learners import MOBILE, MOPO, MixedSampler

    steppers = {}
    for name, cls, penalty_dtype in (
        ("mobile", MOBILE, "float32"),
        ("mobile_bfloat16_penalty", MOBILE, "bfloat16"),
        ("mopo", MOPO, "float32"),
    ):
        algo = make(cls, device, penalty_dtype)
        real, model = data(device, N_DATA)
        sampler = MixedSampler(real, model, REAL_RATIO, torch.Generator(device=device).manual_seed(0))

        def step(algo=algo, sampler=sampler):
            with policy_within_training_step(algo.policy):
                algo.update(sampler, BATCH)

        steppers[name] = step
    return steppers


def kit_parts(kit_dir: str, device: str):
    """The same for OfflineRL-Kit, built as its ``run_example/run_mobile.py`` / ``run_mopo.py`` do:
    ``(steppers, mopo_policy, dynamics)``; the dynamics never terminates and has no reward penalty."""
    import numpy as np
    import torch

    sys.path.insert(0, kit_dir)
    from offlinerlkit.buffer import ReplayBuffer
    from offlinerlkit.dynamics import EnsembleDynamics
    from offlinerlkit.modules import ActorProb, Critic, EnsembleDynamicsModel, TanhDiagGaussian
    from offlinerlkit.nets import MLP
    from offlinerlkit.policy import MOBILEPolicy, MOPOPolicy
    from offlinerlkit.utils.scaler import StandardScaler

    rng = np.random.default_rng(0)

    def buffer():
        buf = ReplayBuffer(N_DATA, (OBS,), np.float32, ACT, np.float32, device)
        buf.add_batch(
            rng.normal(size=(N_DATA, OBS)).astype(np.float32),
            rng.normal(size=(N_DATA, OBS)).astype(np.float32),
            rng.uniform(-1, 1, size=(N_DATA, ACT)).astype(np.float32),
            rng.normal(size=(N_DATA, 1)).astype(np.float32),
            (rng.random((N_DATA, 1)) < 0.01).astype(np.float32),
        )
        return buf

    def agent():
        torch.manual_seed(0)
        backbone = MLP(input_dim=OBS, hidden_dims=[256, 256])
        dist = TanhDiagGaussian(
            latent_dim=backbone.output_dim, output_dim=ACT, unbounded=True, conditioned_sigma=True, max_mu=1.0
        )
        actor = ActorProb(backbone, dist, device)
        critics = torch.nn.ModuleList(
            Critic(MLP(input_dim=OBS + ACT, hidden_dims=[256, 256]), device) for _ in range(2)
        )
        log_alpha = torch.zeros(1, requires_grad=True, device=device)
        alpha = (-ACT, log_alpha, torch.optim.Adam([log_alpha], lr=1e-4))
        return (
            actor,
            critics,
            torch.optim.Adam(actor.parameters(), lr=1e-4),
            torch.optim.Adam(critics.parameters(), lr=3e-4),
            alpha,
        )

    model = EnsembleDynamicsModel(
        obs_dim=OBS,
        action_dim=ACT,
        hidden_dims=[200] * 4,
        num_ensemble=7,
        num_elites=5,
        weight_decays=[2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4],
        device=device,
    )
    scaler = StandardScaler()
    scaler.fit(rng.normal(size=(1000, OBS + ACT)))
    dynamics = EnsembleDynamics(
        model, torch.optim.Adam(model.parameters(), lr=1e-3), scaler, lambda o, a, n: np.zeros((len(o), 1), bool)
    )
    actor, critics, actor_optim, critics_optim, alpha = agent()
    policies = {
        "mobile": MOBILEPolicy(
            dynamics, actor, critics, actor_optim, critics_optim, alpha=alpha, penalty_coef=1.5, num_samples=10
        )
    }
    actor, critics, actor_optim, _, alpha = agent()
    critic_optims = [
        torch.optim.Adam(c.parameters(), lr=3e-4) for c in critics
    ]  # run_mopo.py: one optimiser per critic
    policies["mopo"] = MOPOPolicy(dynamics, actor, critics[0], critics[1], actor_optim, *critic_optims, alpha=alpha)
    real, fake = buffer(), buffer()
    n_real = int(BATCH * REAL_RATIO)

    def stepper(policy):
        def step():  # what mb_policy_trainer.py does per gradient step
            policy.learn({"real": real.sample(n_real), "fake": fake.sample(BATCH - n_real)})

        return step

    for policy in policies.values():
        policy.train()
    return {name: stepper(policy) for name, policy in policies.items()}, policies["mopo"], dynamics


def measure(kit_dir: str, steps: int, blocks: int, threads: int, tuned: bool) -> dict:
    """Steps/s of both libraries for MOBILE and MOPO, alternating blocks of ``steps``."""
    import torch

    sys.path.insert(0, str(ROOT))
    from morec.allocator import keep_freed_memory

    torch.set_num_threads(threads)
    applied = keep_freed_memory() if tuned else False
    ours = morec_steppers("cpu")
    kit, kit_mopo, kit_dynamics = kit_parts(kit_dir, "cpu")
    out = {"allocator_tuned": applied}
    for name in ("mobile", "mobile_bfloat16_penalty", "mopo"):
        kit_name = "mopo" if name == "mopo" else "mobile"  # Kit's MOBILE computes its penalty in float32
        n = steps if kit_name == "mobile" else steps * 10
        times: dict[str, list[float]] = {"morec": [], "offlinerl_kit": []}
        for step in (ours[name], kit[kit_name]):  # warm-up
            for _ in range(3):
                step()
        for _ in range(blocks):
            for lib, step in (("morec", ours[name]), ("offlinerl_kit", kit[kit_name])):
                start = time.perf_counter()
                for _ in range(n):
                    step()
                times[lib].append(n / (time.perf_counter() - start))
        rates = {lib: round(statistics.median(v), 2) for lib, v in times.items()}
        out[name] = {
            "gradient_steps_per_s": rates,
            "morec_over_offlinerl_kit": round(rates["morec"] / rates["offlinerl_kit"], 3),
            "steps_per_block": n,
            "blocks": blocks,
        }
    out["rollout_b50000_h5"] = rollout_throughput(kit_mopo)
    out["dynamics_epoch_100k"] = dynamics_epoch_seconds(kit_dynamics)
    return out


def fit_view(data: dict):
    """Kit's training dict (``rewards [N, 1]``) as what ``fit_ensemble`` reads (``rewards [N]``)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        observations=data["observations"],
        actions=data["actions"],
        next_observations=data["next_observations"],
        rewards=data["rewards"][:, 0],
    )


def rollout_throughput(kit_mopo, batch: int = 50_000, horizon: int = 5, repeats: int = 3) -> dict:
    """Model transitions/s of one MOPO rollout from ``batch`` start states, ``horizon`` steps, no
    termination: morec's engine against Kit's ``MOPOPolicy.rollout``, each with its library's SAC actor
    sampling actions and the 7 x 4 x 200 ensemble (best of ``repeats``, alternating)."""
    import numpy as np
    import torch
    from bench_rollout import never
    from bench_train import make

    from morec import ModelBuffer, RolloutConfig, RolloutEngine
    from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo
    from morec.learners import MOPO, sample_action

    actor = make(MOPO, "cpu").actor
    engine = RolloutEngine(
        EnsembleDynamics(TaskInfo(OBS, ACT), EnsembleConfig(), seed=0).eval(),
        never,
        RolloutConfig(horizon=horizon),
        seed=0,
    )
    starts = np.random.default_rng(0).normal(size=(batch, OBS)).astype(np.float32)
    buffer = ModelBuffer(batch * horizon, OBS, ACT, "cpu")

    def ours():
        with torch.no_grad():
            return engine.rollout(torch.as_tensor(starts), lambda o: sample_action(actor, o)[0], buffer).transitions

    def kit():
        return kit_mopo.rollout(starts, horizon)[1]["num_transitions"]

    best = {"morec": 0.0, "offlinerl_kit": 0.0}
    for _ in range(repeats):
        for lib, run in (("morec", ours), ("offlinerl_kit", kit)):
            start = time.perf_counter()
            transitions = run()
            best[lib] = max(best[lib], transitions / (time.perf_counter() - start))
    rates = {lib: round(v) for lib, v in best.items()}
    return {"transitions_per_s": rates, "morec_over_offlinerl_kit": round(rates["morec"] / rates["offlinerl_kit"], 3)}


def dynamics_epoch_seconds(kit_dynamics, epochs: int = 3, repeats: int = 2) -> dict:
    """Seconds per epoch of ensemble training (a pass over the training split in batches of 256, then
    the holdout check) on ``N_DATA`` transitions: ``morec``'s ``fit_ensemble`` against Kit's
    ``EnsembleDynamics.train``, each run for ``epochs`` epochs (the whole call timed, setup
    included), median of ``repeats`` alternating runs."""
    import contextlib
    import io
    import tempfile

    import numpy as np
    from offlinerlkit.utils.logger import Logger

    from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo, fit_ensemble

    rng = np.random.default_rng(1)
    obs = rng.normal(size=(N_DATA, OBS)).astype(np.float32)
    data = {
        "observations": obs,
        "actions": rng.uniform(-1, 1, size=(N_DATA, ACT)).astype(np.float32),
        "next_observations": obs + 0.01 * rng.normal(size=(N_DATA, OBS)).astype(np.float32),
        "rewards": rng.normal(size=(N_DATA, 1)).astype(np.float32),
    }

    def ours():
        fit_ensemble(
            EnsembleDynamics(TaskInfo(OBS, ACT), EnsembleConfig(max_epochs=epochs), seed=0),
            fit_view(data),
            show_progress=False,
        )

    def kit():
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            kit_dynamics.train(data, Logger(tmp, {"dynamics_training_progress": "csv"}), max_epochs=epochs)

    seconds: dict[str, list[float]] = {"morec": [], "offlinerl_kit": []}
    for _ in range(repeats):
        for lib, run in (("morec", ours), ("offlinerl_kit", kit)):
            start = time.perf_counter()
            run()
            seconds[lib].append((time.perf_counter() - start) / epochs)
    per_epoch = {lib: round(statistics.median(v), 2) for lib, v in seconds.items()}
    return {
        "seconds_per_epoch": per_epoch,
        "offlinerl_kit_over_morec": round(per_epoch["offlinerl_kit"] / per_epoch["morec"], 3),
        "epochs_per_run": epochs,
        "runs": repeats,
    }


def epochs_to_stop(
    kit_dir: str, hdf5: str, threads: int, libraries: tuple[str, ...] = ("morec", "offlinerl_kit"), seed: int = 0
) -> dict:
    """Each library's ensemble training run to its own early stop (5 epochs without a 1 % holdout
    gain, no epoch cap) on the same D4RL-format file: epochs, seconds, and each library's holdout MSE
    of its elites' means (raw targets: next-state deltas and reward; each on its own random 1,000
    held-out rows; morec's at each member's best epoch, the one it keeps, Kit's at its last epoch).
    ``libraries``: which of the two to train, one after the other; ``seed``: both libraries' seed
    (initial weights, holdout rows, bootstrap and batch order)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from morec.allocator import keep_freed_memory
    from morec.data.formats import read_d4rl_hdf5
    from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo, fit_ensemble

    torch.set_num_threads(threads)
    keep_freed_memory()
    fields = read_d4rl_hdf5(Path(hdf5))[0]
    data = {
        k: np.asarray(fields[k], dtype=np.float32) for k in ("observations", "actions", "next_observations", "rewards")
    }
    data["rewards"] = data["rewards"].reshape(-1, 1)
    obs_dim, act_dim = data["observations"].shape[1], data["actions"].shape[1]

    result = {"dataset": hdf5, "transitions": len(data["rewards"]), "threads": threads, "seed": seed}
    if "morec" in libraries:
        start = time.perf_counter()
        report = fit_ensemble(
            EnsembleDynamics(TaskInfo(obs_dim, act_dim), EnsembleConfig(), seed=seed),
            fit_view(data),
            seed=seed,
            show_progress=False,
        )
        result["morec"] = {
            "epochs": report.epochs,
            "seconds": round(time.perf_counter() - start, 1),
            "elite_holdout_mse": round(report.elite_holdout_mse, 5),
        }
    if "offlinerl_kit" in libraries:
        result["offlinerl_kit"] = kit_epochs_to_stop(data, obs_dim, act_dim, seed)
    if {"morec", "offlinerl_kit"} <= set(libraries):
        result["seconds_per_epoch"] = {
            name: round(result[name]["seconds"] / result[name]["epochs"], 2) for name in libraries
        }
    return result


def kit_epochs_to_stop(data: dict, obs_dim: int, act_dim: int, seed: int = 0) -> dict:
    """OfflineRL-Kit's ensemble (its MOBILE/MOPO launchers' sizes) trained to its own early stop."""
    import contextlib
    import csv
    import io
    import tempfile

    import numpy as np
    import torch
    from offlinerlkit.dynamics import EnsembleDynamics as KitDynamics
    from offlinerlkit.modules import EnsembleDynamicsModel
    from offlinerlkit.utils.logger import Logger
    from offlinerlkit.utils.scaler import StandardScaler

    torch.manual_seed(seed)
    np.random.seed(seed)
    model = EnsembleDynamicsModel(
        obs_dim=obs_dim,
        action_dim=act_dim,
        hidden_dims=[200] * 4,
        num_ensemble=7,
        num_elites=5,
        weight_decays=[2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4],
        device="cpu",
    )
    kit = KitDynamics(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-3),
        StandardScaler(),
        lambda o, a, n: np.zeros((len(o), 1), bool),
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        logger = Logger(tmp, {"dynamics_training_progress": "csv"})
        start = time.perf_counter()
        kit.train(data, logger, max_epochs=None)
        seconds = time.perf_counter() - start
        with open(Path(tmp) / "record" / "dynamics_training_progress.csv") as f:
            rows = list(csv.DictReader(f))
    return {
        "epochs": len(rows),
        "seconds": round(seconds, 1),
        "elite_holdout_mse_last_epoch": round(float(rows[-1]["loss/dynamics_holdout_loss"]), 5),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kit_dir", help="an OfflineRL-Kit checkout (fetched into a temporary directory)")
    p.add_argument("--steps", type=int, default=20, help="MOBILE steps per block (MOPO: 10x)")
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--epochs-to-stop",
        metavar="HDF5",
        help="instead: train both libraries' ensembles to their own early stop on this D4RL-format file",
    )
    p.add_argument(
        "--libraries",
        default="morec,offlinerl_kit",
        help="with --epochs-to-stop: the libraries to train, one after the other (run one per process "
        "to train them at the same time on two idle cores)",
    )
    p.add_argument("--seed", type=int, default=0, help="with --epochs-to-stop: both libraries' seed")
    p.add_argument("--child", choices=("default", "tuned"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.epochs_to_stop:
        libraries = tuple(dict.fromkeys(args.libraries.split(",")))  # each once, in the order given
        if not libraries or set(libraries) - {"morec", "offlinerl_kit"}:
            p.error(f"--libraries: {args.libraries!r}; give morec, offlinerl_kit or both, comma-separated")
        sys.path.insert(0, args.kit_dir)
        print(
            json.dumps(epochs_to_stop(args.kit_dir, args.epochs_to_stop, args.threads, libraries, args.seed), indent=2)
        )
        return
    if args.child:
        print(json.dumps(measure(args.kit_dir, args.steps, args.blocks, args.threads, args.child == "tuned")))
        return
    result = {"machine": platform.processor() or platform.machine(), "threads": args.threads, "batch_size": BATCH}
    for allocator in ("default", "tuned"):  # a process cannot undo the allocator setting: one child each
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                args.kit_dir,
                "--steps",
                str(args.steps),
                "--blocks",
                str(args.blocks),
                "--threads",
                str(args.threads),
                "--child",
                allocator,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result[f"allocator_{allocator}"] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
