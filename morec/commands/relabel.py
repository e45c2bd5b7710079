"""``morec relabel``: dense per-step rewards for a dataset whose reward arrives per episode, and/or
its rewards reshaped with a training config's ``shaping:`` section (``--shaping``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from morec.bundled_configs import find_config
from morec.credit.configs import RDConfig
from morec.credit.relabel import FACTORS, METHODS
from morec.errors import UserError

NAME = "relabel"
HELP = (
    "dense per-step rewards for episodic data (IRCR, RD, RRD, LaRe with hand-written/identity/LLM factors) and/or "
    "reward shaping"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset source (file, d4rl:, neorl:, minari:)")
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--out", required=True, help="the relabelled dataset (.hdf5); the report goes beside it")
    p.add_argument(
        "--method", choices=(*METHODS, "none"), default="lare", help="credit assignment; none: only --shaping"
    )
    p.add_argument(
        "--shaping",
        default=None,
        metavar="CONFIG",
        help="then shape the rewards with the shaping: section of this YAML (a training config or an overlay "
        "such as configs/shaping/clip.yaml); the file's rewards are shaped whatever its apply_to says",
    )
    p.add_argument(
        "--factors",
        choices=FACTORS,
        default="identity",
        help="LaRe's factor encoder; 'llm' asks the OpenAI-compatible server named by MOREC_LLM_BASE_URL / "
        "MOREC_LLM_MODEL",
    )
    p.add_argument(
        "--replay-cache", default=None, help="directory of recorded LLM answers (with --factors llm); reused offline"
    )
    p.add_argument(
        "--allow-unjailed-llm-code",
        action="store_true",
        help="with --factors llm on a system without the sandbox jail (not Linux x86-64/AArch64): run the "
        "LLM's code behind the static check and resource limits alone instead of refusing",
    )
    p.add_argument(
        "--episodic",
        action="store_true",
        help="first turn the dataset's dense rewards into episodic ones (for experiments: keeps the truth to compare)",
    )
    p.add_argument("--updates", type=int, default=RDConfig.updates)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from morec.credit.decomposers import episodic
    from morec.credit.relabel import relabel
    from morec.data import load_dataset

    if args.method == "none" and not args.shaping:
        raise UserError("--method none relabels nothing by itself; pass --shaping CONFIG or choose a method")
    shaping = shaping_config(args.shaping) if args.shaping else None  # a bad config stops before any fitting
    ds = load_dataset(args.dataset, env_id=args.env)
    if args.episodic:
        ds = episodic(ds)
    report = relabel(
        ds,
        Path(args.out),
        args.method,
        source=str(args.dataset),
        factors=args.factors,
        updates=args.updates,
        seed=args.seed,
        device=args.device,
        replay_cache=args.replay_cache,
        allow_unjailed_llm_code=args.allow_unjailed_llm_code,
        show_progress=not args.no_progress,
        shaping=shaping,
    )
    print(json.dumps(report, indent=2))
    return 0


def shaping_config(path: str):
    """``(ShapingConfig, discount)`` from a YAML file's ``shaping:`` section, checked like `morec train`
    checks it (the discount: the file's ``agent.gamma``, for ``gamma: null``)."""
    from morec.training.config import load_config

    cfg = load_config(find_config(path))
    if not cfg.shaping.enabled:
        raise UserError(
            f"--shaping {path}: its shaping.transform is none (or it has no shaping: section); "
            "use a config that sets one, e.g. configs/shaping/clip.yaml"
        )
    return cfg.shaping, cfg.agent.gamma
