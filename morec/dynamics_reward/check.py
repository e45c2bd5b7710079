"""Does the MOREC filter keep model rollouts honest? Filtered against unfiltered (random elite)
rollouts from the same start states with the same policy noise, the MuJoCo oracle as the truth.

Per policy (:func:`check_policy`):

- ``filtered`` / ``unfiltered``: oracle error of the written transitions, ``mean_rollout_length``
  and ``fake_terminal_fraction`` (transitions marked terminal by the filter, not by the
  termination function);
- ``step_matched_error_ratio``: mean over steps 1..``matched_steps`` of (error of filtered rows ÷
  error of unfiltered rows) at the same step, over start states alive in both; ``per_step`` arrays;
- ``selection_gain_captured`` at step 1: (mean candidate error - picked error) ÷ (mean candidate
  error - oracle-best candidate error) over the same candidates;
- for deterministic policies, model-based policy evaluation: H-step returns in the model with
  selection but **no truncation** (``filtered``) or random elites (``unfiltered``) against the
  true return (the oracle steps the same policy until H or true termination).

:func:`check_filter` adds the false-truncation rate on held-out real transitions and, with
several deterministic policies, how well the model ranks them (``policy_ranking_spearman``).
Errors are normalised as in :mod:`morec.rollout.model_error`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from morec.dynamics_reward.config import FilterCheckConfig, MorecFilterConfig
from morec.dynamics_reward.filter import MorecSelector
from morec.dynamics_reward.model import DynamicsReward
from morec.dynamics_reward.training import sample_elite_next_obs
from morec.metrics import auc, spearman
from morec.rollout.buffer import ModelBuffer
from morec.rollout.engine import RolloutEngine, RolloutStats, StepRecord
from morec.rollout.model_error import normalised_error
from morec.rollout.policies import RowPolicy


@dataclass
class CheckedPolicy:
    """A policy to check: ``act(obs [B, O], rows [B], step) -> [B, A]`` with noise fixed per
    (start row, step); ``deterministic`` policies also get model-based policy evaluation."""

    name: str
    act: RowPolicy
    deterministic: bool


@dataclass
class RolloutRecord:
    """Every transition one rollout wrote, flattened ``[T]`` (numpy), with its run statistics."""

    step: np.ndarray  # [T]
    row: np.ndarray  # [T] start-state index
    obs: np.ndarray  # [T, O]
    act: np.ndarray  # [T, A]
    next_obs: np.ndarray  # [T, O]
    reward: np.ndarray  # [T]
    terminal: np.ndarray  # [T] written terminal flag
    terminated: np.ndarray  # [T] by the termination function
    stats: RolloutStats


# ---------------------------------------------------------------------------------------- measures
def selection_gain(candidate_error: np.ndarray, picked: np.ndarray) -> float:
    """``candidate_error [K, B]``, ``picked [B]`` -> (mean candidate error - picked error) ÷ (mean
    candidate error - oracle-best error), each averaged over rows: 1 = the oracle's pick, 0 = no
    better than a random candidate (nan when all candidates are equally good)."""
    mean = candidate_error.mean()
    chosen = candidate_error[picked, np.arange(candidate_error.shape[1])].mean()
    best = candidate_error.min(axis=0).mean()
    return float((mean - chosen) / (mean - best)) if mean > best else float("nan")


def step_matched_errors(filtered: np.ndarray, unfiltered: np.ndarray, matched_steps: int) -> tuple[float, dict]:
    """``filtered``, ``unfiltered`` ``[H, N]`` errors per step and start state (nan where the row
    was not alive) -> (mean over the first ``matched_steps`` steps of the per-step ratio of mean
    errors over rows alive in both, ``per_step`` arrays ``[H]`` with ``None`` where no row is)."""
    both = ~np.isnan(filtered) & ~np.isnan(unfiltered)  # [H, N]
    rows = both.sum(axis=1)
    f = np.where(both, filtered, 0.0).sum(axis=1) / np.maximum(rows, 1)
    u = np.where(both, unfiltered, 0.0).sum(axis=1) / np.maximum(rows, 1)
    ratio = np.where(rows > 0, f / np.where(u > 0, u, np.nan), np.nan)
    head = ratio[:matched_steps]
    mean = float(np.nanmean(head)) if np.isfinite(head).any() else None
    per_step = {
        "filtered_error": _listed(f, rows),
        "unfiltered_error": _listed(u, rows),
        "ratio": _listed(ratio, rows),
        "rows": rows.tolist(),
    }
    return mean, per_step


def return_errors(model_returns: np.ndarray, true_returns: np.ndarray) -> dict:
    """``[N]`` model and true returns of the same start states -> mean, |error| and bias."""
    diff = model_returns - true_returns
    return {
        "return_mean": float(model_returns.mean()),
        "return_abs_error": float(np.abs(diff).mean()),
        "return_bias": float(diff.mean()),
    }


def real_reward_summary(reward: DynamicsReward, obs, act, next_obs, threshold: float) -> dict:
    """r_D of real transitions ``[N, ...]``: the fraction below ``threshold`` and its 5/25/50 % quantiles."""
    with torch.no_grad():
        r = reward(obs, act, next_obs).double().cpu().numpy()
    return {
        "false_truncation_rate": float((r < threshold).mean()),
        "real_reward_quantiles": {str(q): float(np.quantile(r, q / 100)) for q in (5, 25, 50)},
    }


# ---------------------------------------------------------------------------------------- rollouts
def rollout_record(engine: RolloutEngine, policy: RowPolicy, starts: torch.Tensor) -> RolloutRecord:
    """Roll ``policy`` from ``starts [N, O]``, telling it each live row's start index and step."""
    live = {"rows": torch.arange(len(starts), device=engine.device), "step": 0}
    records: list[StepRecord] = []

    def on_step(rec: StepRecord) -> None:
        records.append(rec)
        live["rows"], live["step"] = rec.rows[~rec.ended], rec.step + 1

    buffer = ModelBuffer(
        max(len(starts) * engine.config.horizon, 1), starts.shape[1], engine.dynamics.task.act_dim, engine.device
    )
    stats = engine.rollout(starts, lambda obs: policy(obs, live["rows"], live["step"]), buffer, step_callback=on_step)

    def cat(name, dtype=np.float64):
        return torch.cat([getattr(r, name) for r in records]).cpu().numpy().astype(dtype)

    step = np.concatenate([np.full(len(r.rows), r.step) for r in records])
    return RolloutRecord(
        step,
        cat("rows", np.int64),
        cat("observations"),
        cat("actions"),
        cat("next_observations"),
        cat("rewards"),
        cat("terminals", bool),
        cat("terminated", bool),
        stats,
    )


def true_returns(oracle, policy: RowPolicy, starts: torch.Tensor, horizon: int) -> np.ndarray:
    """``[N]`` undiscounted returns of ``policy`` stepped in the oracle from ``starts [N, O]`` until
    ``horizon`` steps or true termination."""
    obs = starts.detach().cpu().numpy().astype(np.float64)
    rows = np.arange(len(obs))
    total = np.zeros(len(obs))
    for step in range(horizon):
        if len(rows) == 0:
            break
        act = policy(
            torch.as_tensor(obs, dtype=torch.float32, device=starts.device),
            torch.as_tensor(rows, device=starts.device),
            step,
        )
        obs, reward, terminated = oracle.step(obs, act.detach().cpu().numpy().astype(np.float64))
        total[rows] += reward
        obs, rows = obs[~terminated], rows[~terminated]
    return total


def error_table(
    rec: RolloutRecord, oracle, obs_std: np.ndarray, horizon: int, starts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(``[T]`` oracle error of each written transition, ``[T]`` true rewards, ``[H, N]`` error per
    step and start state, nan where that row was not alive)."""
    true_next, true_reward, _ = oracle.step(rec.obs, rec.act)
    err = normalised_error(rec.next_obs, true_next, obs_std)
    table = np.full((horizon, starts), np.nan)
    table[rec.step, rec.row] = err
    return err, true_reward, table


def run_summary(rec: RolloutRecord, err: np.ndarray, true_reward: np.ndarray, starts: int, horizon: int) -> dict:
    """The per-run numbers: the keys eval-model has always printed plus rollout length and fake terminals."""
    counts = np.bincount(rec.step, minlength=horizon)
    per_step = np.bincount(rec.step, weights=err, minlength=horizon) / np.maximum(counts, 1)
    last = int(np.nonzero(counts)[0].max())
    stats = rec.stats
    return {
        "error": float(err.mean()),
        "median_error": float(np.median(err)),
        "error_first_step": float(per_step[0]),
        f"error_step_{last + 1}": float(per_step[last]),
        "reward_abs_error": float(np.abs(rec.reward - true_reward).mean()),
        "transitions": int(len(err)),
        "mean_length": stats.mean_length,
        "truncated": stats.stopped,
        "terminated": stats.terminated,
        "reward_d": stats.selector.get("reward_d"),
        "mean_rollout_length": len(err) / starts,
        "fake_terminal_fraction": float((rec.terminal & ~rec.terminated).mean()),
    }


def model_returns(rec: RolloutRecord, starts: int) -> np.ndarray:
    return np.bincount(rec.row, weights=rec.reward, minlength=starts)


# ---------------------------------------------------------------------------------------- the check
@torch.no_grad()
def check_policy(
    dynamics,
    reward: DynamicsReward | None,
    filter_config: MorecFilterConfig,
    threshold: float,
    policy: CheckedPolicy,
    starts: torch.Tensor,
    oracle,
    termination_fn,
    obs_std: np.ndarray,
    config: FilterCheckConfig,
) -> dict:
    """The per-policy report (``policies.<name>``); without ``reward`` only the unfiltered side."""
    horizon, n = config.horizon, len(starts)

    def engine(selector):
        return RolloutEngine(dynamics, termination_fn, config.rollout(), selector=selector, seed=config.seed)

    out: dict = {}
    unfiltered = rollout_record(engine(None), policy.act, starts)
    u_err, u_true_r, u_table = error_table(unfiltered, oracle, obs_std, horizon, n)
    out["unfiltered"] = run_summary(unfiltered, u_err, u_true_r, n, horizon)
    if reward is not None:
        selector = MorecSelector(reward, filter_config, threshold=threshold)
        filtered = rollout_record(engine(selector), policy.act, starts)
        f_err, f_true_r, f_table = error_table(filtered, oracle, obs_std, horizon, n)
        out["filtered"] = run_summary(filtered, f_err, f_true_r, n, horizon)
        out["filtered_over_unfiltered_error"] = out["filtered"]["error"] / out["unfiltered"]["error"]
        out["step_matched_error_ratio"], out["per_step"] = step_matched_errors(f_table, u_table, config.matched_steps)
        out.update(first_step_selection(dynamics, reward, selector, policy, starts, oracle, obs_std, config))
    if policy.deterministic:
        truth = true_returns(oracle, policy.act, starts, horizon)
        out["true_return_mean"] = float(truth.mean())
        out["unfiltered"].update(return_errors(model_returns(unfiltered, n), truth))  # deterministic: the same rollout
        if reward is not None:
            select_only = MorecSelector(reward, filter_config, threshold=float("-inf"))
            out["filtered"].update(
                return_errors(model_returns(rollout_record(engine(select_only), policy.act, starts), n), truth)
            )
            unf = out["unfiltered"]["return_abs_error"]
            out["return_error_ratio"] = out["filtered"]["return_abs_error"] / unf if unf > 0 else None
    return out


def first_step_selection(
    dynamics, reward, selector: MorecSelector, policy: CheckedPolicy, starts, oracle, obs_std, config: FilterCheckConfig
) -> dict:
    """At step 1 from ``starts``: ``selection_gain_captured`` and the rank correlation between r_D
    and oracle error over all candidates (``reward_error_spearman``, negative = reward tracks truth)."""
    engine = RolloutEngine(
        dynamics,
        lambda o, a, x: torch.zeros(len(o), dtype=torch.bool, device=o.device),
        config.rollout(),
        seed=config.seed,
    )
    act = policy.act(starts, torch.arange(len(starts), device=starts.device), 0)
    cands, _, consensus = engine.candidates(starts, act)  # [K, B, O + 1], [B, O + 1]
    reward_d, scores = selector.score(starts, act, cands, consensus)  # [K, B]
    picked = selector.pick(scores, engine.generator).cpu().numpy()
    true_next, _, _ = oracle.step(starts.cpu().numpy(), act.cpu().numpy())
    pred = cands[..., :-1].cpu().numpy().astype(np.float64)
    err = normalised_error(pred, true_next[None], obs_std)  # [K, B]
    return {
        "selection_gain_captured": selection_gain(err, picked),
        "reward_error_spearman": spearman(reward_d.cpu().numpy().ravel(), err.ravel()),
    }


def check_filter(
    dynamics,
    reward: DynamicsReward | None,
    filter_config: MorecFilterConfig,
    threshold: float | None,
    policies: list[CheckedPolicy],
    starts: torch.Tensor,
    oracle,
    termination_fn,
    obs_std: np.ndarray,
    config: FilterCheckConfig,
    real_transitions: tuple | None = None,
) -> dict:
    """The whole report: ``policies.<name>`` for each policy, the false-truncation rate on
    ``real_transitions`` (held-out real ``(s, a, s')``) and ``policy_ranking_spearman``."""
    report: dict = {}
    if reward is not None and real_transitions is not None:
        report.update(real_reward_summary(reward, *real_transitions, threshold))
    report["policies"] = {
        p.name: check_policy(
            dynamics, reward, filter_config, threshold, p, starts, oracle, termination_fn, obs_std, config
        )
        for p in policies
    }
    evaluated = [(p.name, report["policies"][p.name]) for p in policies if p.deterministic]
    if len(evaluated) >= 2:
        truth = np.array([r["true_return_mean"] for _, r in evaluated])
        report["policy_ranking_spearman"] = {
            side: spearman(np.array([r[side]["return_mean"] for _, r in evaluated]), truth)
            for side in ("filtered", "unfiltered")
            if side in evaluated[0][1]
        }
    return report


def _listed(values: np.ndarray, rows: np.ndarray) -> list:
    return [float(v) if r > 0 and np.isfinite(v) else None for v, r in zip(values, rows)]


@torch.no_grad()
def discrimination_report(reward, dynamics, ds, seed: int, n: int = 5000, noise_scale: float = 0.1) -> dict:
    """AUC of r_D: held-out-like real transitions against (a) MLE-ensemble samples and (b) real
    transitions whose s' is perturbed by ``noise_scale`` x the per-dimension std of s' - s."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(ds), size=min(n, len(ds)), replace=False)
    device = dynamics.device
    obs, act, nxt = (
        torch.as_tensor(a[rows], device=device) for a in (ds.observations, ds.actions, ds.next_observations)
    )
    gen = torch.Generator(device=device).manual_seed(seed)
    real = reward(obs, act, nxt).cpu().numpy()
    model_next, _, _ = sample_elite_next_obs(dynamics, obs, act, gen)
    delta_std = (nxt - obs).std(0)
    perturbed = nxt + noise_scale * delta_std * torch.randn(nxt.shape, device=device, generator=gen)
    return {
        "auc_real_vs_model_samples": auc(real, reward(obs, act, model_next).cpu().numpy()),
        "auc_real_vs_perturbed": auc(real, reward(obs, act, perturbed).cpu().numpy()),
        "perturbation": f"{noise_scale} x std of (s' - s) per dimension",
        "real_reward_mean": float(real.mean()),
        "transitions": int(len(rows)),
        "note": "scored on transitions held out from reward training (report.json: holdout)",
    }
