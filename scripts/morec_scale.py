"""MOREC at D4RL scale: the evidence run behind docs/morec_scale.

Jobs, each a resumable command whose outputs are kept (a rerun skips what is finished and resumes
the rest), run ``--jobs`` at a time as soon as the jobs they need are done:

1. ``collect:<task>``: ``morec collect`` with the behaviour-SAC recipe of docs/morec_learning
   (:data:`RECIPES`): medium = 1,000,000 transitions, plus medium-replay and medium-expert;
2. ``check:<task>:<size>``: ``scripts/morec_check.py`` on medium at each ``--sizes`` (nested
   subsets of whole episodes; the full file at 1,000,000) with :data:`CHECK_VARIANTS` (at 1M
   :data:`FULL_CHECK_VARIANTS`: also the paper reward distilled and scored in bfloat16);
3. ``learn:<task>:seeds<k>``: ``scripts/morec_learning.py`` on medium-1M for the variants of
   :data:`CANDIDATES` (configs written under ``<root>/configs``) over the first ``k`` seeds,
   seed-major, every run sharing the 1M check's dynamics model and paper dynamics reward
   (``dynamics_path``, ``reward_path``), so the variants differ only in what they say;
4. ``replay:halfcheetah``: MOPO and ``mopo_morec_stop`` on HalfCheetah's medium-replay, every seed,
   :data:`REPLAY_EPOCHS` (the runs the rule's medium-replay exclusion reads for that candidate);
5. with ``--recommended`` (the candidate the rule chose), ``mobile:<task>``: MOBILE against MOBILE
   with that candidate's MOREC settings, seed 0, ``--mobile-epochs``.

Every job's first log line names the commit of the code it ran (``git describe``) and the processor
(a fresh machine of another kind regenerates data and models that differ in the last bits, so rows
from two kinds are not one experiment), and ``<root>/jobs.json`` keeps both per job;
``<root>/status.md`` lists every job (done, running, waiting, failed) after each change.

    python scripts/morec_scale.py --root runs/morec_scale --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))

from morec_check import VARIANTS, reward_dir_name  # noqa: E402

from morec.io import atomic_write  # noqa: E402
from morec.provenance import code_version, machine  # noqa: E402

MEDIUM_SIZE = 1_000_000
# morec collect flags per task: the behaviour SACs of docs/morec_learning (Hopper and Walker2d learn
# with a fixed entropy weight of 0.2 and learning rate 1e-3, HalfCheetah with a tuned one at 3e-4)
RECIPES = {
    "hopper": ["--env", "Hopper-v4", "--lr", "1e-3", "--alpha", "0.2", "--warmup-steps", "10000"],
    "halfcheetah": ["--env", "HalfCheetah-v4", "--lr", "3e-4"],
    "walker2d": ["--env", "Walker2d-v4", "--lr", "1e-3", "--alpha", "0.2", "--warmup-steps", "10000"],
}
COMMON_COLLECT = [
    "--train-steps",
    "300000",
    "--eval-every",
    "10000",
    "--hidden-size",
    "256",
    "--dataset-size",
    str(MEDIUM_SIZE),
    "--levels",
    "medium,medium-replay,medium-expert",
    "--envs",
    "64",
    "--no-progress",
]
CHECK_VARIANTS = "paper,paper-auto,paper-auto-consensus-1,consensus-only"
# at 1M also the paper reward distilled into one network and scored in bfloat16: does the cheap
# filter check like r_D (either may be used only if it does: docs/morec_scale)?
FULL_CHECK_VARIANTS = CHECK_VARIANTS + ",paper-distilled,paper-auto-distilled,paper-bfloat16,paper-auto-bfloat16"
CHOOSING_TASKS = ("hopper", "halfcheetah")  # the recommended configuration is chosen on these; walker2d confirms

# variant -> (shipped config it starts from, overrides). "matched": MOREC's rollout, filter and dynamics
# reward with every learner setting of the host's config (scripts/make_configs.py).
STOP = ["filter.truncate_as=stop"]
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "mopo": ("mopo", []),
    "mopo_morec_stop": (
        "mopo_morec_matched",
        STOP,
    ),  # the paper's filter (0.6, r_D pick), cuts not written as terminals
    "mopo_morec_paper": ("mopo_morec_matched", []),  # the paper's filter as published: every cut a terminal
    "mopo_morec_auto_stop": ("mopo_morec_matched", ["filter.threshold=auto", *STOP]),
    "mopo_morec_auto_consensus_stop": (
        "mopo_morec_matched",
        ["filter.threshold=auto", "filter.consensus_weight=1", *STOP],
    ),
    "mopo_morec_stop_paper_lambda": ("paper/mopo_morec", STOP),  # with MOREC's own λ for its long rollouts
}
# issue 15's HalfCheetah medium-replay `stop` ablation had one seed, on a 60,000-transition set that is
# gone (today's collect does not remake it): MOPO and mopo_morec_stop get three seeds on this study's
# HalfCheetah medium-replay, at that ablation's 100,000 steps, for the rule's medium-replay exclusion
REPLAY_TASK = "halfcheetah"
REPLAY_VARIANTS = ("mopo", "mopo_morec_stop")
REPLAY_EPOCHS = 100
# the attribution ablation (one task, the same truncation as mopo_morec_stop): what picks the candidate
ABLATION_TASK = "hopper"
ABLATIONS: dict[str, tuple[str, list[str]]] = {
    "mopo_morec_stop_pick_consensus": ("mopo_morec_matched", [*STOP, "filter.consensus_weight=1000000"]),
    "mopo_morec_stop_pick_random": ("mopo_morec_matched", [*STOP, "filter.mode=random"]),
}


# rule 8: MOBILE against MOBILE + the chosen candidate's MOREC settings, one seed per task. The
# chosen candidate's MOPO config maps to MOBILE's (its overrides are filter and truncation settings)
MOBILE_BASE = {"mopo_morec_matched": "mobile_morec_matched", "paper/mopo_morec": "paper/mobile_morec"}


def mobile_variants(recommended: str) -> dict[str, tuple[str, list[str]]]:
    """MOBILE and MOBILE with the MOREC settings of candidate ``recommended``."""
    base, overrides = CANDIDATES[recommended]
    if base not in MOBILE_BASE:
        raise SystemExit(
            f"morec_scale: error: --recommended {recommended}: MOPO without MOREC has no MOBILE + MOREC twin"
        )
    return {"mobile": ("mobile", []), recommended.replace("mopo", "mobile", 1): (MOBILE_BASE[base], overrides)}


def d4rl_task(task: str, level: str = "medium") -> str:
    return f"{task}-{level}-v2"


def replay_dir(root: Path) -> Path:
    """Where the ``replay`` job's runs are (``scripts/morec_learning.py``'s ``--out``)."""
    return root / "replay" / REPLAY_TASK


def learning_variants(task: str, recommended: str | None) -> dict[str, tuple[str, list[str]]]:
    """The variants trained on ``task``: every candidate (and on the ablation task the ablations)
    where the choice is made; elsewhere MOPO, the paper's MOREC and the recommended one."""
    if task in CHOOSING_TASKS:
        return {**CANDIDATES, **(ABLATIONS if task == ABLATION_TASK else {})}
    chosen = [recommended] if recommended else []
    return {name: CANDIDATES[name] for name in ("mopo", "mopo_morec_paper", *chosen)}


@dataclass
class Job:
    name: str
    cmd: list[str]
    outputs: list[Path]  # the job is done when these exist
    needs: list[str] = field(default_factory=list)
    finished: Callable[[], bool] | None = None  # a further test of doneness (e.g. no partial row left)

    def done(self) -> bool:
        return all(p.exists() for p in self.outputs) and (self.finished is None or self.finished())


def check_complete(table: Path, variants: str) -> bool:
    """Whether a check's table holds every one of ``variants`` (comma-separated), none partial."""
    if not table.exists():
        return False
    rows = json.loads(table.read_text())["rows"]
    return {r["variant"] for r in rows} >= set(variants.split(",")) and not any(r["partial"] for r in rows)


def learning_complete(table: Path, seeds: int) -> bool:
    """Whether a learning table holds its first ``seeds`` seeds in full: seeds are added one at a
    time, so a table already over more seeds has them."""
    if not table.exists():
        return False
    written = json.loads(table.read_text())
    return len(written["seeds"]) > seeds or (
        len(written["seeds"]) == seeds and not any(r["partial"] for r in written["rows"])
    )


def write_candidate_configs(
    root: Path, task: str, variants: dict[str, tuple[str, list[str]]], level: str = "medium"
) -> Path:
    """Each variant's config, resolved from the shipped one and its overrides, as
    ``<root>/configs/d4rl/<task>-<level>-v2/<variant>.yaml``; returns that configs tree."""
    from morec.io import plain
    from morec.training.config import load_config

    tree, name = root / "configs", d4rl_task(task, level)
    for variant, (base, overrides) in variants.items():
        cfg = load_config(ROOT / "configs" / "d4rl" / name / f"{base}.yaml", overrides)
        path = tree / "d4rl" / name / f"{variant}.yaml"
        text = f"# {variant}: configs/d4rl/{name}/{base}.yaml with {overrides or 'nothing changed'}\n"
        text += yaml.safe_dump(plain(cfg.to_dict()), sort_keys=False)
        if not path.exists() or path.read_text() != text:
            atomic_write(path, lambda tmp, text=text: tmp.write_text(text))
    return tree


def shared_models(task: str, root: Path) -> list[str]:
    """The overrides giving a run ``task``'s 1M check's dynamics model and paper dynamics reward
    (``dynamics_path``, ``reward_path``), so the medium-1M variants differ only in what they say."""
    full = root / "check" / f"{task}-{MEDIUM_SIZE}"
    return [
        f"dynamics_path={full / 'dynamics'}",
        f"reward_path={full / 'rewards' / reward_dir_name(VARIANTS['paper'][0])}",
    ]


def learning_command(
    task: str, root: Path, out: Path, variants: list[str], seeds: str, epochs: int, sets: list[str], level: str
) -> list[str]:
    """``morec_learning.py`` on ``task``'s ``level`` data with the overrides ``sets``."""
    return [
        sys.executable,
        str(ROOT / "scripts" / "morec_learning.py"),
        *("--dataset", str(root / "data" / task / f"{task}-{level}.hdf5"), "--task", d4rl_task(task, level)),
        *("--out", str(out), "--configs", str(root / "configs"), "--variants", ",".join(variants)),
        *("--seeds", seeds, "--epochs", str(epochs), "--max-parallel", "1"),
        *[x for s in sets for x in ("--set", s)],
    ]


def plan(args) -> list[Job]:
    root, py = Path(args.root).resolve(), sys.executable
    jobs: list[Job] = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for task in args.tasks.split(","):
        data = root / "data" / task
        medium = data / f"{task}-medium.hdf5"
        jobs.append(
            Job(
                f"collect:{task}",
                [py, "-m", "morec.cli", "collect", "--out", str(data), *RECIPES[task], *COMMON_COLLECT],
                [data / "collect_summary.json", medium],
            )
        )
        for size in sizes:
            out = root / "check" / f"{task}-{size}"
            subset = [] if size >= MEDIUM_SIZE else ["--transitions", str(size)]
            variants = FULL_CHECK_VARIANTS if size >= MEDIUM_SIZE else CHECK_VARIANTS
            jobs.append(
                Job(
                    f"check:{task}:{size}",
                    [
                        py,
                        str(ROOT / "scripts" / "morec_check.py"),
                        "--collect",
                        str(data),
                        "--level",
                        "medium",
                        *subset,
                        "--out",
                        str(out),
                        "--variants",
                        variants,
                        "--max-epochs",
                        str(args.dynamics_max_epochs),
                    ],
                    [out / "table.json"],
                    [f"collect:{task}"],
                    lambda t=out / "table.json", v=variants: check_complete(t, v),
                )
            )
        if args.no_learning:
            continue
        seeds = [int(s) for s in args.seeds.split(",")]
        out = root / "learn" / task
        for k in range(1, len(seeds) + 1):
            variants = list(learning_variants(task, args.recommended))
            jobs.append(
                Job(
                    f"learn:{task}:seeds{k}",
                    learning_command(
                        task,
                        root,
                        out,
                        variants,
                        ",".join(map(str, seeds[:k])),
                        args.epochs,
                        shared_models(task, root),
                        "medium",
                    ),
                    [out / "table.json"],
                    [f"check:{task}:{MEDIUM_SIZE}"] + ([f"learn:{task}:seeds{k - 1}"] if k > 1 else []),
                    lambda t=out / "table.json", n=k: learning_complete(t, n),
                )
            )
        if task == REPLAY_TASK:  # rule 4's medium-replay runs: the dynamics and reward trained on that data
            replay_out = replay_dir(root)
            jobs.append(
                Job(
                    f"replay:{task}",
                    learning_command(
                        task, root, replay_out, list(REPLAY_VARIANTS), args.seeds, REPLAY_EPOCHS, [], "medium-replay"
                    ),
                    [replay_out / "table.json"],
                    [f"collect:{task}"],
                    lambda t=replay_out / "table.json", n=seeds: learning_complete(t, len(n)),
                )
            )
        if args.recommended:  # rule 8, once the choice is made
            mobile_out = root / "learn-mobile" / task
            variants = list(mobile_variants(args.recommended))
            jobs.append(
                Job(
                    f"mobile:{task}",
                    learning_command(
                        task,
                        root,
                        mobile_out,
                        variants,
                        "0",
                        args.mobile_epochs,
                        [*shared_models(task, root), *args.mobile_set],
                        "medium",
                    ),
                    [mobile_out / "table.json"],
                    [f"check:{task}:{MEDIUM_SIZE}"],
                    lambda t=mobile_out / "table.json": learning_complete(t, 1),
                )
            )
    return sorted(jobs, key=priority)


def priority(job: Job) -> tuple:
    """The order jobs start in when several are ready, the choice's critical path first: collections;
    the choosing tasks' full-size checks; their learning, seed by seed (what the choice needs), with
    the medium-replay runs of rule 4 after the first seed; the confirming task's full-size check; the
    smaller checks; the confirming task's learning, seed by seed; MOBILE last. Within a stage, the
    tasks in :data:`RECIPES` order."""
    kind, task, rest = (job.name.split(":") + [""])[:3]
    choosing = task in CHOOSING_TASKS
    if kind == "collect":
        stage = 0
    elif kind == "check" and rest == str(MEDIUM_SIZE):
        stage = 1 if choosing else 10
    elif kind == "check":
        stage = 20
    elif kind == "learn":
        stage = (2 if choosing else 30) + int(rest.removeprefix("seeds"))
    elif kind == "replay":  # the rule's medium-replay exclusion: after the first seeds of the choosing tasks
        stage = 3.5
    else:  # mobile
        stage = 999
    return stage, list(RECIPES).index(task)


def write_status(root: Path, jobs: list[Job], state: dict[str, dict]) -> None:
    lines = ["| job | state | commit | machine | started | seconds |", "|---|---|---|---|---|---|"]
    for job in jobs:
        s = state.get(job.name, {})
        lines.append(
            f"| {job.name} | {s.get('state', 'waiting')} | {s.get('commit', '')} | {s.get('machine', '')} | "
            f"{s.get('started', '')} | {s.get('seconds', '')} |"
        )
    lines += [
        "",
        "Learning runs as they finish, and how far the others have got: `learn/<task>/runs/table.md`,",
        "`replay/<task>/runs/table.md` (each suite's table); the rule on what finished: `scripts/morec_rule.py`.",
    ]
    atomic_write(root / "status.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    atomic_write(root / "jobs.json", lambda tmp: tmp.write_text(json.dumps(state, indent=2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="runs/morec_scale")
    p.add_argument("--tasks", default="hopper,halfcheetah,walker2d")
    p.add_argument("--sizes", default=f"{MEDIUM_SIZE},100000,300000", help="check sizes (transitions of medium)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=200, help="learning: train.epochs (1,000 gradient steps each)")
    p.add_argument("--dynamics-max-epochs", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time (each uses one CPU thread)")
    p.add_argument("--no-learning", action="store_true", help="only collect and check")
    p.add_argument(
        "--recommended",
        default=None,
        choices=sorted(CANDIDATES),
        help="the candidate the rule chose (docs/morec_scale): also trained on the confirming task, and its "
        "MOREC settings on MOBILE against MOBILE on every task (one seed)",
    )
    p.add_argument("--mobile-epochs", type=int, default=100, help="the MOBILE runs' train.epochs")
    p.add_argument(
        "--mobile-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="overrides for the MOBILE runs only, e.g. mobile.penalty_dtype=bfloat16",
    )
    p.add_argument("--only", default=None, help="comma-separated job names (and what they need)")
    p.add_argument(
        "--plan", action="store_true", help="list the jobs, what each needs and whether it is done; run nothing"
    )
    args = p.parse_args(argv)

    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        if task not in RECIPES:
            raise SystemExit(f"morec_scale: error: --tasks: unknown task {task!r}; choose from {', '.join(RECIPES)}")
        write_candidate_configs(root, task, learning_variants(task, args.recommended))
        if task == REPLAY_TASK:
            write_candidate_configs(root, task, {v: CANDIDATES[v] for v in REPLAY_VARIANTS}, "medium-replay")
        if args.recommended:
            write_candidate_configs(root, task, mobile_variants(args.recommended))
    jobs = plan(args)
    if args.only:
        wanted = set(args.only.split(","))
        by_name = {j.name: j for j in jobs}
        unknown = wanted - set(by_name)
        if unknown:
            raise SystemExit(
                f"morec_scale: error: --only: no job named {sorted(unknown)[0]!r}; jobs: {', '.join(by_name)}"
            )
        while True:  # what the wanted jobs need, transitively
            more = {n for w in wanted for n in by_name[w].needs} - wanted
            if not more:
                break
            wanted |= more
        jobs = [j for j in jobs if j.name in wanted]
    if args.plan:
        for job in jobs:
            print(f"{'done' if job.done() else 'todo'}  {job.name}  (needs {', '.join(job.needs) or 'nothing'})")
        return 0
    state_file = root / "jobs.json"
    state: dict[str, dict] = json.loads(state_file.read_text()) if state_file.exists() else {}
    for record in state.values():  # a runner stopped with its jobs leaves them "running": they are not
        if record.get("state") == "running":
            record["state"] = "stopped (runner restarted)"
    commit = code_version()  # of the checkout this script imports morec from (a frozen worktree)
    processor = machine()  # every job runs on the CPU, one thread each
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    attempts: dict[str, int] = {}
    by_name = {j.name: j for j in jobs}
    while True:
        for name, (proc, started) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            ok = proc.returncode == 0 and by_name[name].done()
            state[name].update(
                state="done" if ok else f"failed (exit {proc.returncode})", seconds=round(time.time() - started)
            )
            write_status(root, jobs, state)
        pending = [j for j in jobs if j.name not in running and not j.done() and attempts.get(j.name, 0) < 2]
        ready = [j for j in pending if all(by_name[n].done() for n in j.needs if n in by_name)]
        for job in ready[: max(0, args.jobs - len(running))]:
            attempts[job.name] = attempts.get(job.name, 0) + 1
            log = root / "logs" / f"{job.name.replace(':', '-')}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as fh:
                fh.write(
                    f"# {time.strftime('%Y-%m-%d %H:%M:%S')} commit {commit} on {processor}: {' '.join(job.cmd)}\n"
                )
                fh.flush()
                proc = subprocess.Popen(job.cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=root)
            running[job.name] = (proc, time.time())
            state[job.name] = {
                "state": "running",
                "commit": commit,
                "machine": processor,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "attempt": attempts[job.name],
                "log": str(log),
            }
            write_status(root, jobs, state)
        for job in jobs:  # done outside this runner (by hand, or before it kept records): no commit of ours
            if job.done() and state.get(job.name, {}).get("state") != "done":
                state.setdefault(job.name, {"commit": "(found done; see its log)"})["state"] = "done"
                write_status(root, jobs, state)
        if not running and not ready:
            break
        time.sleep(10)
    write_status(root, jobs, state)
    left = [j.name for j in jobs if not j.done()]
    print(
        f"morec_scale: {len(jobs) - len(left)}/{len(jobs)} jobs done"
        + (f"; not done: {', '.join(left)}" if left else "")
    )
    return 0 if not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
