"""``morec relabel``: dense per-step rewards for a dataset whose reward arrives per episode."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..credit.configs import RDConfig
from ..credit.relabel import FACTORS, METHODS

NAME = "relabel"
HELP = "dense per-step rewards for episodic data (IRCR, RD, RRD, LaRe with hand-written/identity/LLM factors)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset source (file, d4rl:, neorl:, minari:)")
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--out", required=True, help="the relabelled dataset (.hdf5); the report goes beside it")
    p.add_argument("--method", choices=METHODS, default="lare")
    p.add_argument("--factors", choices=FACTORS, default="identity",
                   help="LaRe's factor encoder; 'llm' asks the OpenAI-compatible server named by MOREC_LLM_BASE_URL / MOREC_LLM_MODEL")
    p.add_argument("--replay-cache", default=None, help="directory of recorded LLM answers (with --factors llm); reused offline")
    p.add_argument("--allow-unjailed-llm-code", action="store_true",
                   help="with --factors llm on a system without the sandbox jail (not Linux x86-64/AArch64): run the "
                        "LLM's code behind the static check and resource limits alone instead of refusing")
    p.add_argument("--episodic", action="store_true",
                   help="first turn the dataset's dense rewards into episodic ones (for experiments: keeps the truth to compare)")
    p.add_argument("--updates", type=int, default=RDConfig.updates)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..credit.decomposers import episodic
    from ..credit.relabel import relabel
    from ..data import load_dataset

    ds = load_dataset(args.dataset, env_id=args.env)
    if args.episodic:
        ds = episodic(ds)
    report = relabel(ds, Path(args.out), args.method, source=str(args.dataset), factors=args.factors, updates=args.updates,
                     seed=args.seed, device=args.device, replay_cache=args.replay_cache,
                     allow_unjailed_llm_code=args.allow_unjailed_llm_code, show_progress=not args.no_progress)
    print(json.dumps(report, indent=2))
    return 0
