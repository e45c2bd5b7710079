"""Adversarial (GAIL-style) training of :class:`DynamicsReward` from offline data.

The transition MDP: state (s, a), action s'. The generator is a Gaussian transition model
initialised from the MLE-trained ensemble; the discriminator separates real (s, a, s') from
(s, a, s_hat) with s_hat drawn from a random elite of the generator. Per update:

- discriminator: binary cross-entropy (real = 1, generated = 0) minus a small Bernoulli-entropy
  bonus, plus an optional gradient penalty; with ``logit_clip`` the logits are clipped inside
  these losses so they cannot saturate; with ``entropy_target`` the bonus's weight is tuned (as
  SAC tunes its temperature) so the mean Bernoulli entropy of the logits stays near the target;
- negatives (``negative_steps``): 1 is the generator's sample one step ahead at dataset (s, a);
  k > 1 rolls the generator 1..k steps (uniformly) along dataset trajectories with the dataset's
  own actions, so the discriminator also sees compounding-error states;
- ``contrastive_coef`` > 0 (a deviation from the paper, labelled so): also rank the real s' above
  K generator candidates at the same (s, a) by softmax cross-entropy over the K + 1 logits, which
  is what the filter's pick uses;
- generator (``generator="adversarial"``): maximise ``E[-log(1 - D(s, a, s_hat))]`` through the
  reparameterised sample, plus an MLE anchor (the ensemble's Gaussian NLL on real data) and an
  entropy bonus so it cannot collapse; with ``generator="fixed"`` the MLE ensemble stays as it is;
  ``generator="scratch"`` trains the same way a newly initialised ensemble of the same architecture
  (the released loader names a transition network with its own size and learning rate), so the
  negatives, and the anchors g_i, come from a model that shares nothing with the rollout ensemble;
- every ``snapshot_interval`` updates a snapshot of D is kept with its mean logits on held-out
  real transitions (``e_i``) and on negatives drawn as in training from those rows (``g_i``).

The reward uses every ``snapshot_stride``-th of the last ``max_snapshots`` snapshots (newest
first); snapshots that do not separate the calibration data (``e_i <= g_i``) are left out. Fewer
than ``MIN_SNAPSHOTS`` used is warned about: that is hardly a historical ensemble.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter

from morec.dynamics.ensemble import EnsembleDynamics
from morec.dynamics.training import training_arrays
from morec.dynamics_reward.config import MIN_SNAPSHOTS, DynamicsRewardConfig, FewSnapshotsWarning
from morec.dynamics_reward.model import Discriminator, DynamicsReward
from morec.progress import progress_iter


def snapshot_warning(used: int, taken: int, cfg: DynamicsRewardConfig) -> str:
    return (
        f"the dynamics reward uses only {used} discriminator snapshot(s) (of {taken} taken; num_updates="
        f"{cfg.num_updates}, snapshot_interval={cfg.snapshot_interval}, snapshot_stride={cfg.snapshot_stride}); "
        f"MOREC needs a historical ensemble of at least {MIN_SNAPSHOTS}: raise num_updates or lower snapshot_stride"
    )


@dataclass
class RewardFitReport:
    updates: int
    snapshots_taken: int
    snapshots_used: int
    discriminator_loss: float  # mean over the last snapshot interval
    discriminator_accuracy: float
    generator_loss: float | None
    real_logit: float  # the last snapshot's e_i and g_i
    fake_logit: float
    seconds: float


def sample_elite_next_obs(
    dynamics: EnsembleDynamics, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reparameterised next observation ``[B, O]`` from a uniformly chosen elite per row, with
    that member's mean and logvar ``[B, O + 1]`` (differentiable w.r.t. the dynamics)."""
    mean, logvar = dynamics.predict(obs, act)  # [E, B, O + 1]
    rows = torch.arange(len(obs), device=obs.device)
    member = dynamics.elites[torch.randint(len(dynamics.elites), (len(obs),), device=obs.device, generator=generator)]
    mean, logvar = mean[member, rows], logvar[member, rows]
    noise = torch.randn(mean.shape, device=mean.device, generator=generator)
    sample = mean + noise * (0.5 * logvar).exp()
    return sample[:, :-1], mean, logvar


def trajectory_room(dataset) -> np.ndarray:
    """``[N]`` int: rows from each row to the last row of its episode, inclusive (1 at the last)."""
    ends = dataset.episode_ends()
    rows = np.arange(len(dataset))
    return ends[np.searchsorted(ends, rows)] - rows + 1


class NegativeSampler:
    """Generated transitions ``(s_hat, a, s_hat')`` that the discriminator learns to reject.

    ``steps == 1``: ``s_hat = s`` at dataset rows and ``s_hat'`` a generator sample. ``steps = k``:
    from dataset row ``i`` the generator is rolled ``d`` steps, ``d`` uniform in ``1..min(k, room)``,
    with the dataset's actions ``a_i .. a_{i+d-1}``; the negative is the last of those steps."""

    def __init__(self, dataset, steps: int, device: torch.device):
        self.steps = steps
        self.obs = torch.as_tensor(dataset.observations, device=device)
        self.act = torch.as_tensor(dataset.actions, device=device)
        self.room = torch.as_tensor(trajectory_room(dataset), device=device)

    @torch.no_grad()
    def __call__(
        self, gen: EnsembleDynamics, rows: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        """``rows [B]`` -> ``(s_hat [B, O], a [B, A], s_hat' [B, O])``."""
        obs = self.obs[rows]
        if self.steps == 1:
            act = self.act[rows]
            return obs, act, sample_elite_next_obs(gen, obs, act, generator)[0]
        reach = self.room[rows].clamp(max=self.steps)
        depth = (torch.rand(len(rows), device=rows.device, generator=generator) * reach).long() + 1  # [B] in 1..reach
        out_obs, out_act, out_next = obs.clone(), self.act[rows].clone(), obs.clone()
        live, state = torch.arange(len(rows), device=rows.device), obs  # rows still rolling, their states
        for j in range(int(depth.max())):
            act = self.act[rows[live] + j]
            nxt = sample_elite_next_obs(gen, state, act, generator)[0]
            done = depth[live] == j + 1
            out_obs[live[done]], out_act[live[done]], out_next[live[done]] = state[done], act[done], nxt[done]
            live, state = live[~done], nxt[~done]
        return out_obs, out_act, out_next


def _bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return (F.softplus(logits) - p * logits).mean()  # -p log p - (1-p) log(1-p)


def _gradient_penalty(
    disc: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    # drawn where the generator lives (the CPU), then moved: a CPU generator cannot draw on CUDA
    eps = torch.rand(len(real), 1, device=generator.device, generator=generator).to(real.device)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(mix).sum(), mix, create_graph=True)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def fresh_generator(dynamics: EnsembleDynamics, seed: int) -> EnsembleDynamics:
    """A newly initialised ensemble of ``dynamics``'s architecture, input scaling and elites: the
    ``scratch`` generator, which shares no weights with the ensemble that proposes rollout candidates."""
    gen = EnsembleDynamics(dynamics.task, dynamics.config, seed=seed + 1, device=dynamics.device)
    for name in ("input_mean", "input_std", "elites"):
        getattr(gen, name).copy_(getattr(dynamics, name))
    return gen.train()


def _generator_mle(gen: EnsembleDynamics, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The ensemble's own training loss on real (s, a) -> (s' - s, r), averaged over members."""
    mean, logvar = gen.forward_normalised((x - gen.input_mean) / gen.input_std)
    nll = ((mean - y).pow(2) * torch.exp(-logvar)).mean() + logvar.mean()
    return nll + (gen.l2_penalty() + gen.logvar_bound_penalty()) / gen.num_members


def fit_dynamics_reward(
    dataset,
    dynamics: EnsembleDynamics,
    config: DynamicsRewardConfig | None = None,
    *,
    seed: int = 0,
    log_dir: str | None = None,
    show_progress: bool = True,
) -> tuple[DynamicsReward, RewardFitReport]:
    """Train a :class:`DynamicsReward` on ``dataset`` against ``dynamics`` (left unchanged)."""
    cfg = config or DynamicsRewardConfig()
    device = dynamics.device
    start_time = time.perf_counter()
    gen_rng = torch.Generator(device=device).manual_seed(seed)
    torch_gen = torch.Generator().manual_seed(seed)
    obs_dim, act_dim = dynamics.task.obs_dim, dynamics.task.act_dim
    reward = DynamicsReward(obs_dim, act_dim, cfg).to(device)
    reward.set_ranges(np.concatenate([dataset.observations, dataset.next_observations]), np.asarray(dataset.actions))

    obs = torch.as_tensor(dataset.observations, device=device)
    act = torch.as_tensor(dataset.actions, device=device)
    nxt = torch.as_tensor(dataset.next_observations, device=device)
    x_all, y_all = training_arrays(dataset, device)
    perm = torch.randperm(len(obs), device=device, generator=gen_rng)
    n_cal = min(cfg.calibration_size, len(obs) // 5)
    cal, train = perm[:n_cal], perm[n_cal:]

    negatives = NegativeSampler(dataset, cfg.negative_steps, device)
    clip = (lambda z: z.clamp(-cfg.logit_clip, cfg.logit_clip)) if cfg.logit_clip else (lambda z: z)
    disc = Discriminator(1, reward.in_features, cfg.hidden_sizes, generator=torch_gen).to(device)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.discriminator_lr)
    if cfg.generator == "fixed":
        gen, opt_g = dynamics, None
    else:
        gen = (
            copy.deepcopy(dynamics).requires_grad_(True)
            if cfg.generator == "adversarial"
            else fresh_generator(dynamics, seed)
        )
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.generator_lr)
    log_entropy_coef = torch.tensor(
        math.log(cfg.entropy_coef), device=device, requires_grad=cfg.entropy_target is not None
    )
    opt_e = torch.optim.Adam([log_entropy_coef], lr=cfg.discriminator_lr) if cfg.entropy_target is not None else None
    writer = SummaryWriter(log_dir) if log_dir else None
    history: deque = deque(maxlen=cfg.max_snapshots)
    window = {"d_loss": [], "d_acc": [], "g_loss": [], "entropy": []}
    last = {"d_loss": float("nan"), "d_acc": float("nan"), "g_loss": None, "entropy": float("nan")}

    feats = reward.features
    for update in progress_iter(
        show_progress, range(1, cfg.num_updates + 1), total=cfg.num_updates, desc="dynamics reward", unit="update"
    ):
        rows = train[torch.randint(len(train), (cfg.batch_size,), device=device, generator=gen_rng)]
        o, a, n = obs[rows], act[rows], nxt[rows]
        real_x, fake_x = feats(o, a, n), feats(*negatives(gen, rows, gen_rng))
        real_logit, fake_logit = clip(disc(real_x)[0]), clip(disc(fake_x)[0])
        d_loss = F.binary_cross_entropy_with_logits(
            real_logit, torch.ones_like(real_logit)
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        d_entropy = _bernoulli_entropy(torch.cat([real_logit, fake_logit]))
        entropy_coef = cfg.entropy_coef if opt_e is None else log_entropy_coef.detach().exp()
        loss = d_loss - entropy_coef * d_entropy
        if cfg.contrastive_coef:
            with torch.no_grad():
                draws = gen.sample(o, a, cfg.contrastive_samples_per_member, generator=gen_rng)  # [S, E, B, O + 1]
                cands = draws[..., :-1].reshape(-1, *o.shape)  # [K, B, O], as the filter draws them
            k = len(cands)
            cand_x = feats(o.expand(k, -1, -1), a.expand(k, -1, -1), cands).reshape(-1, real_x.shape[-1])
            cand_logit = clip(disc(cand_x)[0]).reshape(k, -1)
            ranked = torch.cat([real_logit[None], cand_logit])  # [K + 1, B]: real first
            loss = loss + cfg.contrastive_coef * F.cross_entropy(
                ranked.T, torch.zeros(len(rows), dtype=torch.long, device=device)
            )
        if cfg.grad_penalty_coef:
            loss = loss + cfg.grad_penalty_coef * _gradient_penalty(lambda z: disc(z)[0], real_x, fake_x, torch_gen)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        if opt_e is not None:  # entropy below target: raise the weight; above: lower it
            coef_loss = log_entropy_coef.exp() * (d_entropy.detach() - cfg.entropy_target)
            opt_e.zero_grad(set_to_none=True)
            coef_loss.backward()
            opt_e.step()
        window["entropy"].append(d_entropy.detach())
        window["d_loss"].append(d_loss.detach())
        window["d_acc"].append(((real_logit > 0).float().mean() + (fake_logit < 0).float().mean()).detach() / 2)

        if opt_g is not None:
            sample, _, logvar = sample_elite_next_obs(gen, o, a, gen_rng)
            adversarial = -F.softplus(disc(feats(o, a, sample))[0]).mean()  # maximise -log(1 - D)
            entropy = 0.5 * logvar[:, :-1].mean()
            g_loss = (
                adversarial
                + cfg.mle_coef * _generator_mle(gen, x_all[rows], y_all[rows])
                - cfg.generator_entropy_coef * entropy
            )
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            window["g_loss"].append(g_loss.detach())

        if update % cfg.snapshot_interval == 0:
            e, g = _calibration_logits(disc, feats, (obs[cal], act[cal], nxt[cal]), negatives(gen, cal, gen_rng))
            history.append(({k: v.detach().clone() for k, v in disc.state_dict().items()}, e, g))
            last = {k: float(torch.stack(v).mean()) if v else None for k, v in window.items()}
            window = {k: [] for k in window}
            if writer is not None:
                writer.add_scalar("reward/discriminator_loss", last["d_loss"], update)
                writer.add_scalar("reward/discriminator_accuracy", last["d_acc"], update)
                writer.add_scalar("reward/real_logit", e, update)
                writer.add_scalar("reward/fake_logit", g, update)
                writer.add_scalar("reward/snapshots", len(history), update)
                writer.add_scalar("reward/discriminator_entropy", last["entropy"], update)
                writer.add_scalar("reward/entropy_coef", float(log_entropy_coef.exp()), update)
                if last["g_loss"] is not None:
                    writer.add_scalar("reward/generator_loss", last["g_loss"], update)

    if not history:
        raise ValueError(
            f"num_updates={cfg.num_updates} is below snapshot_interval={cfg.snapshot_interval}: no snapshot was taken"
        )
    chosen = [h for h in list(history)[::-1][:: cfg.snapshot_stride] if h[1] > h[2]][::-1]
    if not chosen:
        raise RuntimeError(
            "no discriminator snapshot separates real from generated data (e_i <= g_i for all); "
            "train longer or raise discriminator_lr"
        )
    final = reward.with_snapshots([c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen])
    final.env_id, final.layout = dynamics.task.env_id, dynamics.task.layout
    final.set_heldout(obs[cal], act[cal], nxt[cal])  # calibration rows: the discriminator never trained on them
    if len(chosen) < MIN_SNAPSHOTS:
        warnings.warn(snapshot_warning(len(chosen), len(history), cfg), FewSnapshotsWarning, stacklevel=2)
    if writer is not None:
        writer.add_scalar("reward/snapshots_used", len(chosen), cfg.num_updates)
        writer.close()
    report = RewardFitReport(
        updates=cfg.num_updates,
        snapshots_taken=len(history),
        snapshots_used=len(chosen),
        discriminator_loss=last["d_loss"],
        discriminator_accuracy=last["d_acc"],
        generator_loss=last["g_loss"],
        real_logit=history[-1][1],
        fake_logit=history[-1][2],
        seconds=time.perf_counter() - start_time,
    )
    return final.eval(), report


@torch.no_grad()
def _calibration_logits(disc, feats, real: tuple, fake: tuple) -> tuple[float, float]:
    """``(e_i, g_i)``: mean logit on held-out real transitions and on negatives drawn from them."""
    return float(disc(feats(*real)).mean()), float(disc(feats(*fake)).mean())
