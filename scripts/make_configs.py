"""Write configs/: one YAML per task x {mopo, mobile} x {no MOREC; MOREC as morec recommends
(`_morec`); MOREC's rollout and filter with the host's learner settings (`_morec_matched`); MOREC
as the paper's launcher sets it (`paper/`)}, every value commented with its source, and the smoke
budget configs/smoke.yaml, which `--config smoke.yaml` lays over any of them. Re-run after editing
the tables below.

    python scripts/make_configs.py

Sources: "Kit" = OfflineRL-Kit run_example suggestions / README;
"MOBILE repo" = yihaosun1124/mobile configs; "MOREC launcher" = polixir/morec
generate_tmuxp_morec_{mopo,mobile}.py; "default" = morec's defaults, which are the shared
OfflineRL-Kit settings (no per-task value was published).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "configs"

D4RL = [
    f"{d}-{lvl}-v2"
    for d in ("halfcheetah", "hopper", "walker2d")
    for lvl in ("random", "medium", "medium-replay", "medium-expert")
]
NEORL = [f"{d}-v3-{lvl}-1000" for d in ("HalfCheetah", "Hopper", "Walker2d") for lvl in ("low", "medium", "high")]

# MOPO: (horizon, lambda). Kit README / run_mopo.py suggestions; random levels use the MOPO paper's
# values as quoted in the Kit's docstring (h=5, lambda=1 hopper/walker, 0.5 halfcheetah; unverified).
MOPO = {
    "halfcheetah-random-v2": (5, 0.5, "MOPO paper (unverified)"),
    "hopper-random-v2": (5, 1.0, "MOPO paper (unverified)"),
    "walker2d-random-v2": (1, 1.0, "MOPO paper (unverified)"),
    "halfcheetah-medium-v2": (5, 0.5, "Kit"),
    "hopper-medium-v2": (5, 5.0, "Kit"),
    "walker2d-medium-v2": (5, 0.5, "Kit"),
    "halfcheetah-medium-replay-v2": (5, 0.5, "Kit"),
    "hopper-medium-replay-v2": (5, 2.5, "Kit"),
    "walker2d-medium-replay-v2": (1, 2.5, "Kit"),
    "halfcheetah-medium-expert-v2": (5, 2.5, "Kit"),
    "hopper-medium-expert-v2": (5, 5.0, "Kit"),
    "walker2d-medium-expert-v2": (1, 2.5, "Kit"),
}
# MOBILE: (horizon, beta, extra settings, source)
MOBILE = {
    "halfcheetah-random-v2": (5, 0.5, {}, "MOBILE paper"),
    "hopper-random-v2": (5, 5.0, {}, "MOBILE repo"),
    "walker2d-random-v2": (5, 2.0, {}, "MOBILE paper"),
    "halfcheetah-medium-v2": (5, 0.5, {}, "Kit"),
    "hopper-medium-v2": (5, 1.5, {"agent.auto_alpha": False}, "Kit"),
    "walker2d-medium-v2": (5, 0.5, {"dynamics.max_epochs": 30}, "Kit / MOBILE repo"),
    "halfcheetah-medium-replay-v2": (5, 0.1, {}, "Kit"),
    "hopper-medium-replay-v2": (5, 0.1, {"agent.auto_alpha": False}, "MOBILE repo"),
    "walker2d-medium-replay-v2": (1, 0.5, {}, "Kit"),
    "halfcheetah-medium-expert-v2": (5, 1.0, {"train.real_ratio": 0.5}, "MOBILE repo (Kit: beta 2.0, real_ratio 0.05)"),
    "hopper-medium-expert-v2": (5, 1.5, {}, "Kit"),
    "walker2d-medium-expert-v2": (1, 1.5, {}, "Kit"),
    "HalfCheetah-v3-low-1000": (5, 0.5, {}, "MOBILE repo"),
    "HalfCheetah-v3-medium-1000": (5, 0.5, {}, "MOBILE repo"),
    "HalfCheetah-v3-high-1000": (5, 1.5, {}, "MOBILE repo"),
    "Hopper-v3-low-1000": (5, 2.5, {}, "MOBILE repo"),
    "Hopper-v3-medium-1000": (5, 1.5, {}, "MOBILE repo"),
    "Hopper-v3-high-1000": (5, 2.5, {}, "MOBILE repo"),
    "Walker2d-v3-low-1000": (1, 2.5, {}, "MOBILE repo"),
    "Walker2d-v3-medium-1000": (1, 2.5, {}, "MOBILE repo"),
    "Walker2d-v3-high-1000": (1, 2.5, {"train.real_ratio": 0.5}, "MOBILE repo"),
}
# MOREC-MOPO: (lambda, selection mode, extra)
MOREC_MOPO = {
    "halfcheetah-random-v2": (0.5, "softmax", {}),
    "halfcheetah-medium-v2": (0.5, "argmax", {}),
    "halfcheetah-medium-replay-v2": (0.5, "softmax", {}),
    "halfcheetah-medium-expert-v2": (0.5, "argmax", {}),
    "hopper-random-v2": (10.0, "argmax", {}),
    "hopper-medium-v2": (15.0, "softmax", {}),
    "hopper-medium-replay-v2": (15.0, "softmax", {}),
    "hopper-medium-expert-v2": (15.0, "softmax", {}),
    "walker2d-random-v2": (1.0, "softmax", {}),
    "walker2d-medium-v2": (0.5, "softmax", {}),
    "walker2d-medium-replay-v2": (0.25, "argmax", {}),
    "walker2d-medium-expert-v2": (1.0, "softmax", {}),
    "HalfCheetah-v3-low-1000": (2.0, "argmax", {}),
    "HalfCheetah-v3-medium-1000": (2.0, "argmax", {}),
    "HalfCheetah-v3-high-1000": (2.0, "softmax", {}),
    "Hopper-v3-low-1000": (2.0, "argmax", {"agent.auto_alpha": False, "agent.alpha": 0.1}),
    "Hopper-v3-medium-1000": (20.0, "argmax", {"train.real_ratio": 0.5}),
    "Hopper-v3-high-1000": (20.0, "argmax", {"train.real_ratio": 0.5, "agent.auto_alpha": False, "agent.alpha": 0.2}),
    "Walker2d-v3-low-1000": (2.0, "softmax", {}),
    "Walker2d-v3-medium-1000": (2.0, "softmax", {}),
    "Walker2d-v3-high-1000": (2.0, "argmax", {}),
}
# MOREC-MOBILE: (beta, extra); selection is softmax everywhere
MOREC_MOBILE = {
    "halfcheetah-random-v2": (0.25, {}),
    "halfcheetah-medium-v2": (0.25, {}),
    "halfcheetah-medium-replay-v2": (0.25, {}),
    "halfcheetah-medium-expert-v2": (1.0, {"train.real_ratio": 0.5}),
    "hopper-random-v2": (7.5, {"mobile.deterministic_backup": True}),
    "hopper-medium-v2": (1.5, {}),
    "hopper-medium-replay-v2": (0.5, {}),
    "hopper-medium-expert-v2": (1.5, {}),
    "walker2d-random-v2": (1.0, {}),
    "walker2d-medium-v2": (0.75, {}),
    "walker2d-medium-replay-v2": (0.1, {}),
    "walker2d-medium-expert-v2": (0.25, {}),
    "HalfCheetah-v3-low-1000": (1.0, {}),
    "HalfCheetah-v3-medium-1000": (0.5, {}),
    "HalfCheetah-v3-high-1000": (0.75, {}),
    "Hopper-v3-low-1000": (0.5, {}),
    "Hopper-v3-medium-1000": (2.0, {}),
    "Hopper-v3-high-1000": (2.5, {"agent.auto_alpha": False, "agent.alpha": 0.1}),
    "Walker2d-v3-low-1000": (0.75, {}),
    "Walker2d-v3-medium-1000": (0.25, {}),
    "Walker2d-v3-high-1000": (0.1, {"train.real_ratio": 0.5}),
}

SMOKE_OVERLAY = "smoke.yaml"  # under configs/; `--config smoke.yaml` lays it over any config
SMOKE = {  # tiny budgets for tests and quick checks; run with --dataset <a small file>
    "dynamics.max_epochs": 2,
    "dynamics.hidden_sizes": [32, 32],
    "dynamics.weight_decays": [2.5e-5, 5e-5, 1e-4],
    "reward.num_updates": 200,
    "reward.snapshot_interval": 50,
    "reward.snapshot_stride": 2,
    "reward.hidden_sizes": [64],
    "rollout.batch_size": 100,
    "rollout.freq": 50,
    "agent.hidden_sizes": [64, 64],
    "mobile.num_samples": 2,
    "train.epochs": 2,
    "train.steps_per_epoch": 50,
    "train.eval_episodes": 2,
    "train.log_every": 25,
}


# What MOREC changes in a `_morec_matched` config: the rollout (horizon, start states, candidates),
# its filter and the dynamics reward behind it. Every other key (the agent, MOPO's lambda, MOBILE's
# beta and backup, real_ratio, the dynamics model) is the host's, so the matched config differs
# from the host config only in how model data are generated.
ROLLOUT_SECTIONS = ("rollout", "filter", "reward")
LEARNER_SIDE_ROLLOUT_KEYS = ("rollout.penalty_coef",)  # MOPO's lambda is the learner's pessimism: the host's
# What the recommended `_morec` config changes in the matched one: the candidate of scripts/morec_scale.py
# that docs/morec_scale's rule chose, provisionally (rule 9: on seed 0 of its three seeds on Hopper and
# HalfCheetah medium-1M, where the study stopped short)
RECOMMENDED_CANDIDATE = "mopo_morec_auto_stop"
RECOMMENDED = {
    "filter.threshold": (
        "auto",
        "docs/morec_scale's rule, provisionally: cut only below the r_D that 98 % of held-out real transitions reach",
    ),
    "filter.truncate_as": (
        "stop",
        "docs/morec_scale's rule, provisionally: a cut ends the rollout without a fake terminal",
    ),
}


def settings(task: str, algorithm: str, morec: bool, matched: bool = False) -> dict[str, tuple[object, str]]:
    """``{dotted key: (value, source)}`` for one config; ``matched``: MOREC's rollout and filter
    with the host algorithm's learner settings."""
    if matched:
        host = settings(task, algorithm, morec=False)
        paper = settings(task, algorithm, morec=True)
        out = {
            k: v for k, v in host.items() if k.split(".")[0] not in ROLLOUT_SECTIONS or k in LEARNER_SIDE_ROLLOUT_KEYS
        }
        out.update(
            {
                k: v
                for k, v in paper.items()
                if k.split(".")[0] in ROLLOUT_SECTIONS and k not in LEARNER_SIDE_ROLLOUT_KEYS
            }
        )
        return out
    neorl = task[0].isupper()
    out: dict[str, tuple[object, str]] = {}
    if morec:
        src = "MOREC launcher"
        out["rollout.horizon"] = (100, src)
        out["rollout.batch_size"] = (2000, src)
        out["rollout.samples_per_member"] = (2, f"{src}: resample_num_in_transition (10 candidates)")
        out["rollout.candidate_clip"] = (
            1e6 if neorl else 25.0,
            "released MOREC code: candidates (next state and reward) clipped to this; without it a 1M-transition "
            "HalfCheetah model ran to rewards of 1e33 over H = 100 (docs/morec_scale)",
        )
        out["filter.threshold"] = (0.6, f"{src}: terminal_dynamics_reward")
        out["filter.temperature"] = (0.1, f"{src} (hard-coded)")
        out["filter.consensus_weight"] = (0.0, f"{src}: picks by r_D alone")
        out["reward.max_snapshots"] = (400, f"{src}: max_retain_num")
        if algorithm == "mopo":
            coef, mode, extra = MOREC_MOPO[task]
            out["rollout.penalty_coef"] = (coef, src)
            out["filter.mode"] = (mode, src)
            out["reward.snapshot_stride"] = (10, f"{src}: ensemble_choosing_interval")
        else:
            beta, extra = MOREC_MOBILE[task]
            extra = dict(extra)
            out["mobile.beta"] = (beta, src)
            out["filter.mode"] = ("softmax", src)
            out["reward.snapshot_stride"] = (40, f"{src}: ensemble_choosing_interval")
            out["reward.num_updates"] = (
                40_000,
                f"{src}: max_retain_num 400 snapshots at one per 100 updates; stride 40 uses 10",
            )
            out["mobile.actor_on_target_critics"] = (True, f"{src}: MOREC-MOBILE's actor loss on target critics")
            out["mobile.deterministic_backup"] = (extra.pop("mobile.deterministic_backup", False), src)
        out.update({k: (v, src) for k, v in extra.items()})
    elif algorithm == "mopo":
        if task not in MOPO:
            out["rollout.penalty_coef"] = (1.0, "default: no published MOPO value for NeoRL")
        else:
            h, coef, src = MOPO[task]
            out["rollout.horizon"] = (h, src)
            out["rollout.penalty_coef"] = (coef, src)
    else:
        h, beta, extra, src = MOBILE[task]
        out["rollout.horizon"] = (h, src)
        out["mobile.beta"] = (beta, src)
        out["mobile.deterministic_backup"] = (not neorl, "Kit (D4RL) / MOBILE repo (NeoRL: False)")
        if extra.get("agent.auto_alpha") is False:
            out["agent.alpha"] = (0.2, src)
        out.update({k: (v, src) for k, v in extra.items()})
    if neorl and "agent.alpha" not in out and algorithm == "mobile":
        out.setdefault("agent.alpha", (0.1, "MOBILE repo NeoRL default (used only when auto_alpha is off)"))
    return out


VARIANTS = {  # file name -> (MOREC on, matched, recommended): the paper's launcher under paper/
    "{a}.yaml": (False, False, False),
    "{a}_morec.yaml": (True, True, True),
    "{a}_morec_matched.yaml": (True, True, False),
    "paper/{a}_morec.yaml": (True, False, False),
}


def render(task: str, algorithm: str, morec: bool, matched: bool = False, recommended: bool = False) -> str:
    kind = (
        " + MOREC (recommended)"
        if recommended
        else " + MOREC (matched: the host's learner settings)"
        if matched
        else " + MOREC (the paper's launcher)"
        if morec
        else ""
    )
    lines = [
        f"# {task} · {algorithm.upper()}{kind}",
        "# Generated by scripts/make_configs.py; unlisted keys take morec's defaults (OfflineRL-Kit's shared "
        "settings).",
    ]
    if matched:
        kept = (
            "MOPO's lambda (rollout.penalty_coef) and every learner setting"
            if algorithm == "mopo"
            else "every learner setting"
        )
        lines.append(
            f"# Differs from {algorithm}.yaml only in the rollout, filter and reward sections (MOREC's, from "
            f"paper/{algorithm}_morec.yaml); {kept} is {algorithm}.yaml's."
        )
    if recommended:
        lines.append(
            f"# The matched config ({algorithm}_morec_matched.yaml) with what morec recommends, provisionally "
            f"(docs/morec_scale's rule chose {RECOMMENDED_CANDIDATE} on one seed of three): "
            + ", ".join(f"{k}: {v}" for k, (v, _) in RECOMMENDED.items())
            + "."
        )
    lines += [f"task: {task}", f"algorithm: {algorithm}", f"morec: {str(morec).lower()}"]
    values = settings(task, algorithm, morec, matched)
    if recommended:
        values.update(RECOMMENDED)
    lines += render_sections(values)
    return "\n".join(lines) + "\n"


def render_overlay() -> str:
    lines = [
        "# The smoke budget: tiny settings for tests and quick checks, laid over any config by `--config smoke.yaml`",
        "# (e.g. morec train --config d4rl/hopper-medium-v2/mopo.yaml --config smoke.yaml --dataset <a small file>).",
        "# Generated by scripts/make_configs.py.",
    ]
    lines += render_sections({k: (v, "smoke budget") for k, v in SMOKE.items()})
    return "\n".join(lines) + "\n"


def render_sections(values: dict[str, tuple[object, str]]) -> list[str]:
    lines = []
    sections: dict[str, list[str]] = {}
    for key, (value, source) in values.items():
        section, name = key.split(".")
        text = str(value).lower() if isinstance(value, bool) else value
        sections.setdefault(section, []).append(f"  {name}: {text}  # {source}")
    for section, rows in sections.items():
        lines.append(f"{section}:")
        lines.extend(rows)
    return lines


def main() -> None:
    (ROOT / SMOKE_OVERLAY).write_text(render_overlay())
    count = 1
    for task in D4RL + NEORL:
        folder = ROOT / ("d4rl" if task in D4RL else "neorl") / task
        for algorithm in ("mopo", "mobile"):
            for name, (morec, matched, recommended) in VARIANTS.items():
                path = folder / name.format(a=algorithm)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(task, algorithm, morec, matched, recommended))
                count += 1
    print(f"wrote {count} configs under {ROOT}")


if __name__ == "__main__":
    main()
