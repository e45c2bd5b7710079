"""``morec relabel``: dense per-step rewards for a dataset whose reward arrives per episode, and/or
its rewards reshaped with a training config's ``shaping:`` section (``--shaping``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from .configs import IRCRConfig, LaReConfig, RDConfig, RRDConfig

METHODS = ("ircr", "rd", "rrd", "rrd-unbiased", "lare")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset source (file, d4rl:, neorl:, minari:)")
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--out", required=True, help="the relabelled dataset (.hdf5); the report goes beside it")
    p.add_argument("--method", choices=(*METHODS, "none"), default="lare", help="credit assignment; none: only --shaping")
    p.add_argument("--shaping", default=None, metavar="CONFIG",
                   help="then shape the rewards with the shaping: section of this YAML (a training config or an overlay "
                        "such as configs/shaping/clip.yaml); the file's rewards are shaped whatever its apply_to says")
    p.add_argument("--factors", choices=("hand-written", "identity", "llm"), default="identity",
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


def _decomposer(args: argparse.Namespace, ds, out: Path):
    from .decomposers import IRCR, LatentRewardDecoder, RandomizedReturnDecomposition, ReturnDecomposition
    from .factors import IdentityFactors, hand_written_factors

    if args.method == "ircr":
        return IRCR(IRCRConfig(), device=args.device), None
    if args.method == "rd":
        return ReturnDecomposition(RDConfig(updates=args.updates), device=args.device), None
    if args.method in ("rrd", "rrd-unbiased"):
        cfg = RRDConfig(updates=args.updates, bias_correction=args.method == "rrd-unbiased")
        return RandomizedReturnDecomposition(cfg, device=args.device), None
    search = None
    if args.factors == "hand-written":
        if ds.domain is None:
            raise UserError("--factors hand-written needs a hopper, halfcheetah or walker2d dataset; use identity or llm")
        encoder = hand_written_factors(ds.domain)
    elif args.factors == "identity":
        encoder = IdentityFactors()
    else:
        from .llm import (FactorSearchConfig, HTTPChatBackend, HTTPChatConfig, ReplayCache, generate_factor_encoder,
                          spec_for_dataset)

        backend = HTTPChatBackend(HTTPChatConfig.from_env())
        if args.replay_cache:
            backend = ReplayCache(args.replay_cache, backend)
        config = FactorSearchConfig().allowing_unjailed() if args.allow_unjailed_llm_code else FactorSearchConfig()
        search = generate_factor_encoder(backend, spec_for_dataset(ds), ds, out.parent / f"{out.stem}_llm", config)
        encoder = search.encoder
    return LatentRewardDecoder(encoder, LaReConfig(updates=args.updates), device=args.device), search


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..errors import as_user_error
    from .decomposers import episodic
    from .gate import SandboxError

    if args.method == "none" and not args.shaping:
        raise UserError("--method none relabels nothing by itself; pass --shaping CONFIG or choose a method")
    shaping = _shaping_config(args.shaping) if args.shaping else None  # a bad config stops before any fitting
    ds = load_dataset(args.dataset, env_id=args.env)
    if args.episodic:
        ds = episodic(ds)
    out = Path(args.out)
    report = {"dataset": str(args.dataset), "out": str(out)}
    relabelled, search = ds, None
    if args.method != "none":
        with as_user_error(SandboxError):  # LLM code refused (no jail here) or failing on the data: one line
            decomposer, search = _decomposer(args, ds, out)
            fit = decomposer.fit(ds, seed=args.seed, show_progress=not args.no_progress)
            relabelled = decomposer.relabel(ds)
        report["fit"] = fit.to_dict()
    if shaping is not None:
        from ..shaping_setup import shape_dataset

        relabelled, report["shaping"] = shape_dataset(shaping[0], relabelled, gamma=shaping[1], seed=args.seed)
    relabelled.save(out)
    if search is not None:
        report["llm"] = {"fallback": search.fallback, "reason": search.reason, "run_dir": str(search.run_dir)}
    if "true_rewards" in ds.infos:
        truth = ds.infos["true_rewards"]
        report["pearson_with_true_rewards"] = float(np.corrcoef(relabelled.rewards, truth)[0, 1])
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def _shaping_config(path: str):
    """``(ShapingConfig, discount)`` from a YAML file's ``shaping:`` section, checked like `morec train`
    checks it (the discount: the file's ``agent.gamma``, for ``gamma: null``)."""
    from algos.config import load_config  # a command composes morec with algos' config loader

    cfg = load_config(path)
    if not cfg.shaping.enabled:
        raise UserError(f"--shaping {path}: its shaping.transform is none (or it has no shaping: section); "
                        "use a config that sets one, e.g. configs/shaping/clip.yaml")
    return cfg.shaping, cfg.agent.gamma
