"""Dense per-step rewards for a dataset whose reward arrives per episode: one function per step of
``morec relabel`` (pick the decomposer, fit it, relabel and report), with typed parameters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from morec.credit.configs import IRCRConfig, LaReConfig, RDConfig, RRDConfig
from morec.errors import UserError

if TYPE_CHECKING:
    from morec.data import OfflineDataset
    from morec.shaping.config import ShapingConfig

METHODS = ("ircr", "rd", "rrd", "rrd-unbiased", "lare")
FACTORS = ("hand-written", "identity", "llm")


def make_decomposer(
    method: str,
    ds: OfflineDataset,
    out: Path,
    *,
    factors: str = "identity",
    updates: int = RDConfig.updates,
    device: str = "cpu",
    replay_cache: str | None = None,
    allow_unjailed_llm_code: bool = False,
):
    """``(decomposer, search)``: the unfitted decomposer ``method`` (one of :data:`METHODS`) and,
    for LaRe with LLM factors, the factor search (its files go beside ``out``), else ``None``."""
    from morec.credit.decomposers import IRCR, LatentRewardDecoder, RandomizedReturnDecomposition, ReturnDecomposition
    from morec.credit.factors import IdentityFactors, hand_written_factors

    if method not in METHODS:
        raise UserError(f"unknown relabelling method {method!r}: choose from {', '.join(METHODS)}")
    if method == "ircr":
        return IRCR(IRCRConfig(), device=device), None
    if method == "rd":
        return ReturnDecomposition(RDConfig(updates=updates), device=device), None
    if method in ("rrd", "rrd-unbiased"):
        cfg = RRDConfig(updates=updates, bias_correction=method == "rrd-unbiased")
        return RandomizedReturnDecomposition(cfg, device=device), None
    search = None
    if factors == "hand-written":
        if ds.domain is None:
            raise UserError(
                "--factors hand-written needs a hopper, halfcheetah or walker2d dataset; use identity or llm"
            )
        encoder = hand_written_factors(ds.domain)
    elif factors == "identity":
        encoder = IdentityFactors()
    elif factors == "llm":
        from morec.credit.llm import (
            FactorSearchConfig,
            HTTPChatBackend,
            HTTPChatConfig,
            ReplayCache,
            generate_factor_encoder,
            spec_for_dataset,
        )

        backend = HTTPChatBackend(HTTPChatConfig.from_env())
        if replay_cache:
            backend = ReplayCache(replay_cache, backend)
        config = FactorSearchConfig().allowing_unjailed() if allow_unjailed_llm_code else FactorSearchConfig()
        search = generate_factor_encoder(backend, spec_for_dataset(ds), ds, out.parent / f"{out.stem}_llm", config)
        encoder = search.encoder
    else:
        raise UserError(f"unknown factor encoder {factors!r}: choose from {', '.join(FACTORS)}")
    return LatentRewardDecoder(encoder, LaReConfig(updates=updates), device=device), search


def relabel(
    ds: OfflineDataset,
    out: Path,
    method: str,
    *,
    source: str,
    factors: str = "identity",
    updates: int = RDConfig.updates,
    seed: int = 0,
    device: str = "cpu",
    replay_cache: str | None = None,
    allow_unjailed_llm_code: bool = False,
    show_progress: bool = True,
    shaping: tuple[ShapingConfig, float] | None = None,
) -> dict:
    """Fit ``method`` on ``ds`` (``"none"``: keep its rewards), then shape the result with
    ``shaping`` = ``(ShapingConfig, discount)`` if given; save the dataset to ``out`` and its report
    to ``out.with_suffix('.json')``; returns the report (with the Pearson correlation against
    ``infos["true_rewards"]`` when ``ds`` keeps them). ``source`` is the dataset as the user named it.
    LLM code that is refused or fails raises :class:`~morec.errors.UserError`."""
    import json

    from morec.credit.gate import SandboxError
    from morec.errors import as_user_error

    if method == "none" and shaping is None:
        raise UserError("--method none relabels nothing by itself; pass --shaping CONFIG or choose a method")
    report: dict = {"dataset": source, "out": str(out)}
    relabelled, search = ds, None
    if method != "none":
        with as_user_error(SandboxError):  # LLM code refused (no jail here) or failing on the data: one line
            decomposer, search = make_decomposer(
                method,
                ds,
                out,
                factors=factors,
                updates=updates,
                device=device,
                replay_cache=replay_cache,
                allow_unjailed_llm_code=allow_unjailed_llm_code,
            )
            fit = decomposer.fit(ds, seed=seed, show_progress=show_progress)
            relabelled = decomposer.relabel(ds)
        report["fit"] = fit.to_dict()
    if shaping is not None:
        from morec.shaping.setup import shape_dataset

        relabelled, report["shaping"] = shape_dataset(shaping[0], relabelled, gamma=shaping[1], seed=seed)
    relabelled.save(out)
    if search is not None:
        report["llm"] = {"fallback": search.fallback, "reason": search.reason, "run_dir": str(search.run_dir)}
    if "true_rewards" in ds.infos:
        truth = ds.infos["true_rewards"]
        report["pearson_with_true_rewards"] = float(np.corrcoef(relabelled.rewards, truth)[0, 1])
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    return report
