"""Distil a :class:`DynamicsReward`'s snapshot ensemble into one network, so the filter costs about
as much as the rollout it filters.

The teacher's r_D is ``-log(1 - p)`` with ``p`` the mean over snapshots of ``sigmoid(x_i)``,
``x_i in [-1, 1]``. The student is a one-snapshot :class:`DynamicsReward` calibrated with
``g = -1``, ``e = +1``: its r_D is ``-log(1 - sigmoid(clamp(l, -1, 1)))``, so it matches the
teacher exactly when its logit ``l`` equals ``logit(p)``. It is trained on what the filter scores:
the ensemble's K candidates (and the real s') at dataset states and at states 1..``model_steps``
steps into random-elite model rollouts, with dataset or uniform random actions. Loss: squared
error on ``logit(p)`` plus the KL divergence between the teacher's and the student's softmax over
the K candidates of a row (the pick). Agreement is measured on dataset rows held out from
distillation: the picked candidate (argmax of the filter's score) and the truncation decision.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter

from morec.dynamics_reward.config import DistillationConfig, MorecFilterConfig
from morec.dynamics_reward.filter import MorecSelector
from morec.dynamics_reward.model import Discriminator, DynamicsReward
from morec.metrics import spearman
from morec.progress import progress_iter
from morec.rollout.engine import RolloutConfig, RolloutEngine


@dataclass
class DistillationReport:
    updates: int
    seconds: float
    teacher_snapshots: int
    holdout_rows: int
    logit_mae: float  # |student logit - teacher logit(p)| on held-out candidates, in [-1, 1] units
    reward_spearman: float | None  # rank correlation of student and teacher r_D over held-out candidates
    pick_agreement: dict[str, float]  # per consensus weight: argmax of the filter's score agrees
    truncation_agreement: float  # kept candidate below the threshold: same decision
    threshold: float  # the threshold the truncation agreement was measured at

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def teacher_logit(reward: DynamicsReward, features: torch.Tensor) -> torch.Tensor:
    """``features [M, F]`` -> ``logit(p) [M]`` in [-1, 1], the single logit with the teacher's r_D."""
    return torch.logit(reward.probability(features).clamp(1e-6, 1 - 1e-6))


def reward_from_logit(logit: torch.Tensor) -> torch.Tensor:
    return -torch.log(1 - torch.sigmoid(logit.clamp(-1.0, 1.0)) + 1e-9)


class _Rows:
    """Draws rows ``(s [B, O], a [B, A])`` from dataset rows (or model states reached from them)
    with the ensemble's candidates, for distillation or its check."""

    def __init__(
        self,
        dynamics,
        observations: np.ndarray,
        actions: np.ndarray,
        next_observations: np.ndarray,
        config: DistillationConfig,
        rollout: RolloutConfig,
        seed: int,
        device,
    ):
        tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        self.obs, self.acts, self.next_obs = tensor(observations), tensor(actions), tensor(next_observations)
        self.config = config
        self.engine = RolloutEngine(
            dynamics, lambda o, a, n: torch.zeros(len(o), dtype=torch.bool, device=o.device), rollout, seed=seed
        )
        self.generator = self.engine.generator

    def draw(self, n: int, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s [n, O], a [n, A], next states [K(+1), n, O], consensus [n, O + 1])``: ``s`` is a dataset
        state rolled ``steps`` random-elite steps under random actions; at dataset states
        (``steps == 0``) with the dataset's action, the real s' is appended as the last row."""
        device, gen = self.obs.device, self.generator
        rows = torch.randint(len(self.obs), (n,), device=device, generator=gen)
        obs, act_dim = self.obs[rows], self.acts.shape[1]
        for _ in range(steps):
            act = torch.rand((n, act_dim), device=device, generator=gen) * 2 - 1
            cands, _, _ = self.engine.candidates(obs, act)
            obs = cands[
                torch.randint(len(cands), (n,), device=device, generator=gen), torch.arange(n, device=device), :-1
            ]
        random = torch.rand((n, act_dim), device=device, generator=gen) * 2 - 1
        use_random = torch.rand((n, 1), device=device, generator=gen) < self.config.random_action_fraction
        act = torch.where(use_random, random, self.acts[rows])
        cands, _, consensus = self.engine.candidates(obs, act)
        next_obs = cands[..., :-1]
        if steps == 0:  # real s' (rows with random actions: a candidate stands in)
            real = torch.where(use_random, next_obs[0], self.next_obs[rows])
            next_obs = torch.cat([next_obs, real[None]])
        return obs, act, next_obs, consensus


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * fraction)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def distil_reward(
    reward: DynamicsReward,
    dynamics,
    observations: np.ndarray,
    actions: np.ndarray,
    next_observations: np.ndarray,
    config: DistillationConfig | None = None,
    rollout: RolloutConfig | None = None,
    filter_config: MorecFilterConfig | None = None,
    threshold: float = 0.6,
    show_progress: bool = True,
    log_dir: str | None = None,
) -> tuple[DynamicsReward, DistillationReport]:
    """Distil ``reward`` (the teacher) into a one-network reward on dataset transitions
    (``[N, O]``, ``[N, A]``, ``[N, O]``) with candidates from ``dynamics`` drawn as ``rollout``
    says. Agreement is measured on the held-out rows at ``threshold``, with argmax picks under
    ``filter_config``'s consensus weight and under the paper's (0). With ``log_dir`` the losses
    go to TensorBoard (``distil/*``) every 100 updates."""
    config = config or DistillationConfig()
    rollout = rollout or RolloutConfig()
    filter_config = filter_config or MorecFilterConfig()
    device = reward.device
    train_rows, check_rows = _split(len(observations), config.holdout_fraction, config.seed)
    data = (observations, actions, next_observations)
    train = _Rows(dynamics, *(a[train_rows] for a in data), config, rollout, config.seed, device)
    student = Discriminator(
        1, reward.in_features, config.hidden_sizes, generator=torch.Generator().manual_seed(config.seed)
    ).to(device)
    optim = torch.optim.Adam(student.parameters(), lr=config.lr)
    writer = SummaryWriter(log_dir) if log_dir else None
    start = time.time()
    for update in progress_iter(
        show_progress, range(config.updates), total=config.updates, desc="distil reward", unit="update"
    ):
        with torch.no_grad():
            obs, act, next_obs, _ = train.draw(config.batch_size, update % (config.model_steps + 1))
            k = len(next_obs)
            feats = reward.features(obs.expand(k, -1, -1), act.expand(k, -1, -1), next_obs).reshape(
                -1, reward.in_features
            )
            target = teacher_logit(reward, feats).reshape(k, -1)  # [K, B]
        logit = student(feats)[0].reshape(k, -1)
        loss = F.mse_loss(logit, target)
        if config.rank_coef:
            t = config.rank_temperature
            teacher_pick = torch.softmax(reward_from_logit(target) / t, dim=0).T  # [B, K]
            student_pick = torch.log_softmax(reward_from_logit(logit) / t, dim=0).T
            loss = loss + config.rank_coef * F.kl_div(student_pick, teacher_pick, reduction="batchmean")
        optim.zero_grad()
        loss.backward()
        optim.step()
        if writer is not None and (update + 1) % 100 == 0:
            writer.add_scalar("distil/loss", float(loss.detach()), update + 1)
            writer.add_scalar("distil/logit_mse", float(F.mse_loss(logit.detach(), target)), update + 1)
    seconds = time.time() - start
    distilled = reward.with_snapshots(
        [{k: v.detach().clone() for k, v in student.state_dict().items()}],
        [1.0],
        [-1.0],
        config=dataclasses.replace(reward.config, hidden_sizes=config.hidden_sizes),
    )
    distilled.distilled_from = reward.num_snapshots
    check = _Rows(dynamics, *(a[check_rows] for a in data), config, rollout, config.seed + 1, device)
    agreement = distillation_agreement(reward, distilled, check, filter_config, threshold, config.model_steps)
    if writer is not None:
        writer.add_scalar("distil/truncation_agreement", agreement["truncation_agreement"], config.updates)
        for name, value in agreement["pick_agreement"].items():
            writer.add_scalar(f"distil/pick_agreement_{name}", value, config.updates)
        writer.close()
    return distilled, DistillationReport(
        updates=config.updates,
        seconds=round(seconds, 1),
        teacher_snapshots=reward.num_snapshots,
        holdout_rows=len(check_rows),
        threshold=threshold,
        **agreement,
    )


@torch.no_grad()
def distillation_agreement(
    teacher: DynamicsReward,
    student: DynamicsReward,
    rows: _Rows,
    filter_config: MorecFilterConfig,
    threshold: float,
    model_steps: int,
    per_step: int = 1000,
) -> dict:
    """Held-out candidate sets at dataset states and 1..``model_steps`` steps into model rollouts:
    logit error, rank correlation, argmax-pick agreement (per consensus weight) and truncation
    agreement (each reward's kept candidate below ``threshold``, picks under ``filter_config``)."""
    weights = sorted({0.0, float(filter_config.consensus_weight)})
    errors, t_all, s_all = [], [], []
    picks = {w: [] for w in weights}
    cuts = []
    for step in range(model_steps + 1):
        obs, act, next_obs, consensus = rows.draw(per_step, step)
        k = len(next_obs)
        feats = teacher.features(obs.expand(k, -1, -1), act.expand(k, -1, -1), next_obs).reshape(
            -1, teacher.in_features
        )
        errors.append((student.snapshots(feats)[0].clamp(-1, 1) - teacher_logit(teacher, feats)).abs())
        if step == 0:  # the real s' is not a candidate
            next_obs = next_obs[:-1]
        t_r, s_r = teacher(obs, act, next_obs), student(obs, act, next_obs)  # [K, B]
        relative = MorecSelector(teacher, filter_config, threshold=threshold).consensus_distance(next_obs, consensus)
        for w in weights:  # argmax of the filter's score at weight w (MorecSelector.score)
            t_pick = (t_r - w * relative if w else t_r).argmax(0)
            s_pick = (s_r - w * relative if w else s_r).argmax(0)
            picks[w].append((t_pick == s_pick).float())
            if w == filter_config.consensus_weight:
                t_all.append(t_r.ravel())
                s_all.append(s_r.ravel())
                cuts.append(
                    ((t_r.gather(0, t_pick[None]) < threshold) == (s_r.gather(0, s_pick[None]) < threshold))
                    .float()
                    .ravel()
                )
    teacher_r, student_r = torch.cat(t_all).cpu().numpy(), torch.cat(s_all).cpu().numpy()
    return {
        "logit_mae": float(torch.cat(errors).mean()),
        "reward_spearman": spearman(teacher_r, student_r),
        "pick_agreement": {f"consensus_weight_{w:g}": float(torch.cat(p).mean()) for w, p in picks.items()},
        "truncation_agreement": float(torch.cat(cuts).mean()),
    }
