"""Episodic return decomposition: the episodic view of a dataset, and decomposers that spread each
episode's return back over its steps.

Definitions follow the papers: IRCR (Gangwani et al. 2020), RD (Arjona-Medina et al. 2019; Efroni
et al. 2021), RRD (Ren et al. 2022) and LaRe (Qu et al. 2025):

- :class:`IRCR`: every step of an episode gets ``R / T``; optionally min-max normalised over
  the fitted data.
- :class:`ReturnDecomposition` (RD, in LaRe's per-step scale): a reward network on
  ``[s, a]`` with loss ``((1/T) sum_t r_hat_t - R/T)^2``.
- :class:`RandomizedReturnDecomposition` (RRD): the same on a random subset ``I`` of ``K``
  steps, ``(m_I - R/T)^2``; with ``bias_correction`` the term ``(1 - K/T) s_I^2 / K`` is subtracted.
- :class:`LatentRewardDecoder` (LaRe): the reward network on standardised factors
  ``phi(s, a)`` of a factor encoder, trained with the RRD objective (bias-corrected by default).

Every decomposer: ``fit(dataset) -> FitReport``, ``predict(obs, act) -> [N]``,
``relabel(dataset) -> OfflineDataset``, ``save(path)``; :func:`load_decomposer` restores one.
Fitting reads only episode boundaries and returns (reward sums), so it gives the same result on a
dataset and on its episodic view.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from morec.credit.configs import IRCRConfig, LaReConfig, RDConfig, RRDConfig
from morec.credit.factors import FactorEncoder, IdentityFactors, check_inputs, encoder_by_name
from morec.data import OfflineDataset
from morec.io import atomic_torch_save
from morec.progress import progress_iter

EPISODIC_KEY = "episodic_rewards"  # metadata entry of an episodic view
TRUE_REWARDS = "true_rewards"  # infos key holding the original per-step rewards
RELABEL_KEY = "reward_relabelling"  # metadata entry of a relabelled dataset

Array = np.ndarray | torch.Tensor


# ------------------------------------------------------------------------------ episodic view
def _check_dataset(dataset: OfflineDataset) -> None:
    if not isinstance(dataset, OfflineDataset):
        raise TypeError(f"dataset must be an OfflineDataset, got {type(dataset).__name__}")


def episodic(dataset: OfflineDataset) -> OfflineDataset:
    """The episodic-reward view: each episode's return on its last step, zeros elsewhere.

    Episodes are ``dataset.episodes()`` (terminal, timeout, unflagged break, or the unfinished
    tail, whose partial return goes on the final row). The original rewards stay available as
    ``infos["true_rewards"]`` for evaluation; ``metadata["episodic_rewards"]`` records the view.
    """
    _check_dataset(dataset)
    if EPISODIC_KEY in dataset.metadata or TRUE_REWARDS in dataset.infos:
        raise ValueError("dataset is already an episodic view (metadata['episodic_rewards'] is set)")
    rewards = np.zeros(len(dataset), np.float32)
    rewards[dataset.episode_ends()] = dataset.returns()
    meta = {
        **dataset.metadata,
        EPISODIC_KEY: {
            "true_rewards": f"infos/{TRUE_REWARDS}",
            "episodes": len(dataset.episode_ends()),
            "unfinished_last_episode": bool(not (dataset.terminals[-1] or dataset.timeouts[-1])),
        },
    }
    arrays = {k: v.copy() for k, v in dataset.arrays().items()}
    infos = {**{k: v.copy() for k, v in dataset.infos.items()}, TRUE_REWARDS: dataset.rewards.copy()}
    return OfflineDataset(**{**arrays, "rewards": rewards}, metadata=meta, infos=infos)


def split_episodes(dataset: OfflineDataset, holdout: float, seed: int = 0) -> tuple[OfflineDataset, OfflineDataset]:
    """Whole episodes split at random into ``(train, holdout)``; each part keeps recording order and
    marks every episode's last row as a timeout (unless terminal) so boundaries survive."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout}")
    slices = list(dataset.episodes())
    n_hold = round(holdout * len(slices))
    if not 0 < n_hold < len(slices):
        raise ValueError(f"holdout={holdout} of {len(slices)} episodes leaves one part empty")
    held = np.zeros(len(slices), bool)
    held[np.random.default_rng(seed).permutation(len(slices))[:n_hold]] = True
    parts = []
    for mask in (~held, held):
        chosen = [slices[i] for i in np.flatnonzero(mask)]
        part = dataset.take(np.concatenate([np.arange(s.start, s.stop) for s in chosen]))
        ends = np.cumsum([s.stop - s.start for s in chosen]) - 1
        part.timeouts[ends] |= ~part.terminals[ends]
        parts.append(part)
    return parts[0], parts[1]


@dataclass(frozen=True)
class Episodes:
    """Episode structure on a device: ``starts [E]``, ``lengths [E]`` (int64), ``returns [E]`` (float32)."""

    starts: torch.Tensor
    lengths: torch.Tensor
    returns: torch.Tensor

    @classmethod
    def of(cls, dataset: OfflineDataset, device: torch.device) -> Episodes:
        def put(x, dtype):
            return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)

        return cls(
            put(dataset.episode_starts(), torch.int64),
            put(dataset.episode_lengths(), torch.int64),
            put(dataset.returns(), torch.float32),
        )

    def __len__(self) -> int:
        return len(self.starts)

    def step_credit(self) -> torch.Tensor:
        """``[N]``: each step's ``R / T``."""
        return torch.repeat_interleave(self.returns / self.lengths, self.lengths)


# ------------------------------------------------------------------------------ objective
def return_decomposition_loss(
    pred: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, returns: torch.Tensor, bias_correction: bool
) -> torch.Tensor:
    """Mean over episodes of ``(m_I - R/T)^2``, minus
    ``(1 - k/T) s_I^2 / k`` with ``bias_correction``.

    ``pred [B, W]`` predictions at the sampled steps, ``mask [B, W]`` which are real (``k = mask.sum(1)``
    steps per episode), ``lengths [B]`` episode lengths ``T``, ``returns [B]`` episode returns ``R``.
    ``m_I`` is the mean and ``s_I^2`` the (k-1)-normalised variance of the k predictions. With all
    steps of an episode (k = T) the correction vanishes and this is the RD loss / T^2.
    """
    maskf = mask.to(pred.dtype)
    k = maskf.sum(1)
    mean = (pred * maskf).sum(1) / k
    loss = (mean - returns / lengths).square()
    if bias_correction:
        var = ((pred - mean[:, None]).square() * maskf).sum(1) / (k - 1).clamp(min=1)
        loss = loss - (1 - k / lengths) * var / k
    return loss.mean()


def sample_steps(
    episodes: Episodes, batch: torch.Tensor, subset_size: int | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dataset rows ``[B, W]`` and mask ``[B, W]`` for the episodes ``batch [B]``: all steps
    (``subset_size=None``, RD) or ``min(K, T)`` steps drawn uniformly without replacement (RRD)."""
    starts, lengths = episodes.starts[batch], episodes.lengths[batch]
    longest = int(lengths.max())
    pos = torch.arange(longest, device=lengths.device)
    if subset_size is None:
        offsets, mask = pos.expand(len(batch), longest), pos[None] < lengths[:, None]
    else:
        keys = torch.rand(len(batch), longest, generator=generator, device=lengths.device)
        keys = keys.masked_fill(pos[None] >= lengths[:, None], 2.0)  # padding sorts last
        width = min(subset_size, longest)
        offsets = keys.argsort(dim=1)[:, :width]
        mask = pos[None, :width] < lengths.clamp(max=subset_size)[:, None]
    return starts[:, None] + torch.where(mask, offsets, 0), mask


# ------------------------------------------------------------------------------ reports and configs
@dataclass
class FitReport:
    """What a fit did. ``encoder_source`` is ``"hand-written"``, ``"llm"``, ``"identity"`` or None."""

    method: str
    encoder: str | None
    encoder_source: str | None
    episodes: int
    transitions: int
    obs_dim: int
    act_dim: int
    updates: int
    final_loss: float | None  # mean over the last tenth of the updates
    seconds: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------ base
class Decomposer(ABC):
    """Common interface. Subclasses set ``method`` and implement ``fit``, ``_predict`` and state."""

    method: str

    def __init__(self, config: Any, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.report: FitReport | None = None

    @property
    def encoder_info(self) -> dict[str, str | None]:
        return {"encoder": None, "encoder_source": None}

    @abstractmethod
    def fit(self, dataset: OfflineDataset, *, seed: int = 0, show_progress: bool = True) -> FitReport:
        """See the class docstring."""

    @abstractmethod
    def _predict(self, obs: np.ndarray, act: np.ndarray) -> torch.Tensor:
        """See the class docstring."""

    def _require_fitted(self) -> None:
        if self.report is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(dataset) or load a saved one first")

    def predict(self, obs: Array, act: Array) -> Array:
        """Per-step rewards ``[N]`` for ``obs [N, O]``, ``act [N, A]``: a float32 tensor on
        ``device`` for tensor input, a float32 numpy array otherwise."""
        self._require_fitted()
        as_torch = isinstance(obs, torch.Tensor)
        obs_np = obs.detach().cpu().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)
        act_np = act.detach().cpu().numpy() if isinstance(act, torch.Tensor) else np.asarray(act)
        obs_np, act_np = check_inputs(obs_np, act_np, self.report.obs_dim, self.report.act_dim)
        with torch.no_grad():
            out = self._predict(obs_np, act_np)
        return out if as_torch else out.cpu().numpy()

    def relabel(self, dataset: OfflineDataset) -> OfflineDataset:
        """A copy of ``dataset`` with per-step rewards replaced by the decomposer's and
        ``metadata["reward_relabelling"]`` describing how; every other field is unchanged."""
        self._require_fitted()
        _check_dataset(dataset)
        rewards = self._relabel_rewards(dataset)
        meta = {
            **dataset.metadata,
            RELABEL_KEY: {
                "method": self.method,
                **self.encoder_info,
                "config": asdict(self.config),
                "seed": self.report.seed,
            },
        }
        arrays = {k: v.copy() for k, v in dataset.arrays().items()}
        return OfflineDataset(
            **{**arrays, "rewards": rewards}, metadata=meta, infos={k: v.copy() for k, v in dataset.infos.items()}
        )

    def _relabel_rewards(self, dataset: OfflineDataset) -> np.ndarray:
        return self.predict(dataset.observations, dataset.actions)

    # -------------------------------------------------------------------- persistence
    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """See the class docstring."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """See the class docstring."""

    def save(self, path: str | Path) -> Path:
        """Write config, fitted state, fit report and encoder name/source to ``path``."""
        self._require_fitted()
        return atomic_torch_save(
            {
                "class": type(self).__name__,
                "config": asdict(self.config),
                **self.encoder_info,
                "report": self.report.to_dict(),
                "state": self._state(),
            },
            path,
        )


# ------------------------------------------------------------------------------ IRCR
class IRCR(Decomposer):
    """Uniform redistribution: each step of an episode gets ``c = R / T`` (then
    ``(c - c_min) / (c_max - c_min)`` with ``normalize``). No reward model: ``relabel`` uses each
    episode's own return; ``predict`` on arbitrary ``(s, a)`` returns the credit of the nearest
    fitted step (Euclidean distance on standardised ``[s, a]``)."""

    method = "ircr"

    def __init__(self, config: IRCRConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(config or IRCRConfig(), device)
        self.keys = self.credit = self.key_mean = self.key_std = None
        self.credit_range = (0.0, 1.0)

    def fit(self, dataset: OfflineDataset, *, seed: int = 0, show_progress: bool = True) -> FitReport:
        """Store the fitted steps' credits (and their min/max). ``seed``/``show_progress`` are
        accepted for the common interface; IRCR has nothing random or slow."""
        _check_dataset(dataset)
        start = time.perf_counter()
        episodes = Episodes.of(dataset, self.device)
        raw = episodes.step_credit()
        self.credit_range = (float(raw.min()), float(raw.max()))
        keys = torch.as_tensor(IdentityFactors()(dataset.observations, dataset.actions), device=self.device)
        self.key_mean, self.key_std = keys.mean(0), _safe_std(keys)
        self.keys = (keys - self.key_mean) / self.key_std
        self.credit = self._normalise(raw)
        self.report = FitReport(
            self.method,
            None,
            None,
            len(episodes),
            len(dataset),
            dataset.obs_dim,
            dataset.act_dim,
            0,
            None,
            time.perf_counter() - start,
            seed,
        )
        return self.report

    def _normalise(self, credit: torch.Tensor) -> torch.Tensor:
        if not self.config.normalize:
            return credit
        low, high = self.credit_range
        return (credit - low) / max(high - low, 1e-12)

    def _relabel_rewards(self, dataset: OfflineDataset) -> np.ndarray:
        return self._normalise(Episodes.of(dataset, self.device).step_credit()).cpu().numpy()

    def _predict(self, obs: np.ndarray, act: np.ndarray) -> torch.Tensor:
        query = torch.as_tensor(np.concatenate([obs, act], 1), dtype=torch.float32, device=self.device)
        query = (query - self.key_mean) / self.key_std
        chunk = max(1, 2**22 // len(self.keys))  # rows per distance matrix, about 16 MB of float32
        nearest = [torch.cdist(q, self.keys).argmin(1) for q in query.split(chunk)]
        return torch.cat([self.credit[i] for i in nearest]) if nearest else self.credit[:0]

    def _state(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "credit": self.credit,
            "key_mean": self.key_mean,
            "key_std": self.key_std,
            "credit_range": self.credit_range,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        for name in ("keys", "credit", "key_mean", "key_std"):
            setattr(self, name, state[name].to(self.device))
        self.credit_range = tuple(state["credit_range"])


# ------------------------------------------------------------------------------ learned
class RewardNet(nn.Module):
    """MLP ``[N, D] -> [N]``: ``offset + scale * mlp(x)``; offset and scale are fitted target
    statistics (mean per-step return and the spread of ``R/T`` over episodes)."""

    def __init__(self, in_dim: int, hidden_sizes: tuple[int, ...], generator: torch.Generator) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in (*hidden_sizes, 1):
            linear = nn.Linear(in_dim, width)
            nn.init.xavier_uniform_(linear.weight, generator=generator)
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.ReLU()]
            in_dim = width
        self.mlp = nn.Sequential(*layers[:-1])
        self.register_buffer("offset", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.offset + self.scale * self.mlp(x).squeeze(-1)


class _LearnedDecomposer(Decomposer):
    """A reward network on ``encoder(obs, act)`` trained on episode returns.

    ``standardize``: factors are standardised with mean/std of the fitted dataset, stored with the
    model (``factor_mean``/``factor_std``, ``[K]``) and reused by ``predict``.
    """

    standardize = False

    def __init__(self, encoder: FactorEncoder, config: RDConfig, device: str | torch.device = "cpu") -> None:
        super().__init__(config, device)
        for attr in ("name", "source"):
            if not isinstance(getattr(encoder, attr, None), str):
                raise TypeError(
                    f"encoder must have a string attribute {attr!r} (see morec.credit.factors.FactorEncoder)"
                )
        if not callable(encoder):
            raise TypeError("encoder must be callable as encoder(obs [N, O], act [N, A]) -> [N, K]")
        self.encoder = encoder
        self.net: RewardNet | None = None
        self.factor_mean = self.factor_std = None

    @property
    def subset_size(self) -> int | None:
        """K for the RRD objective; None means whole episodes (RD)."""
        return getattr(self.config, "subset_size", None)

    @property
    def bias_correction(self) -> bool:
        return getattr(self.config, "bias_correction", False)

    @property
    def encoder_info(self) -> dict[str, str | None]:
        return {"encoder": self.encoder.name, "encoder_source": self.encoder.source}

    def _factors(self, obs: np.ndarray, act: np.ndarray) -> torch.Tensor:
        """Raw factors ``[N, K]`` on ``device``, checked for shape and finiteness."""
        out = np.asarray(self.encoder(obs, act))
        if out.ndim != 2 or len(out) != len(obs):
            raise ValueError(f"encoder {self.encoder.name!r} returned shape {out.shape}; expected [{len(obs)}, K]")
        if not np.isfinite(out).all():
            raise ValueError(f"encoder {self.encoder.name!r} returned non-finite factors")
        if self.factor_mean is not None and out.shape[1] != len(self.factor_mean):
            raise ValueError(
                f"encoder {self.encoder.name!r} returned {out.shape[1]} factors; the model was fitted on "
                f"{len(self.factor_mean)}"
            )
        return torch.as_tensor(out, dtype=torch.float32, device=self.device)

    def _inputs(self, factors: torch.Tensor) -> torch.Tensor:
        return (factors - self.factor_mean) / self.factor_std

    def fit(self, dataset: OfflineDataset, *, seed: int = 0, show_progress: bool = True) -> FitReport:
        """Train from scratch on ``dataset``'s episodes (same seed, same result on one device)."""
        _check_dataset(dataset)
        cfg, start = self.config, time.perf_counter()
        episodes = Episodes.of(dataset, self.device)
        self.factor_mean = self.factor_std = None
        factors = self._factors(dataset.observations, dataset.actions)
        if self.standardize:
            self.factor_mean, self.factor_std = factors.mean(0), _safe_std(factors)
        else:
            self.factor_mean, self.factor_std = torch.zeros_like(factors[0]), torch.ones_like(factors[0])
        inputs = self._inputs(factors)

        init_gen = torch.Generator().manual_seed(seed)
        sample_gen = torch.Generator(device=self.device).manual_seed(seed)
        self.net = RewardNet(inputs.shape[1], cfg.hidden_sizes, init_gen).to(self.device)
        per_step = episodes.returns / episodes.lengths
        self.net.offset.fill_(float(episodes.returns.sum() / episodes.lengths.sum()))
        if len(episodes) > 1 and float(per_step.std()) > 1e-6:
            self.net.scale.fill_(float(per_step.std()))
        optimiser = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        if self.subset_size is None:
            num_episodes = max(1, cfg.batch_size // int(episodes.lengths.float().mean()))
        else:
            num_episodes = max(1, cfg.batch_size // self.subset_size)

        losses = []
        for _ in progress_iter(
            show_progress, range(cfg.updates), total=cfg.updates, desc=f"fit {self.method}", unit="update", leave=False
        ):
            batch = torch.randint(len(episodes), (num_episodes,), generator=sample_gen, device=self.device)
            rows, mask = sample_steps(episodes, batch, self.subset_size, sample_gen)
            pred = self.net(inputs[rows.reshape(-1)]).reshape(rows.shape)
            loss = return_decomposition_loss(
                pred, mask, episodes.lengths[batch], episodes.returns[batch], self.bias_correction
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.detach())
        tail = torch.stack(losses[-max(1, len(losses) // 10) :])
        self.report = FitReport(
            self.method,
            self.encoder.name,
            self.encoder.source,
            len(episodes),
            len(dataset),
            dataset.obs_dim,
            dataset.act_dim,
            cfg.updates,
            float(tail.mean()),
            time.perf_counter() - start,
            seed,
        )
        return self.report

    def _predict(self, obs: np.ndarray, act: np.ndarray) -> torch.Tensor:
        inputs = self._inputs(self._factors(obs, act))
        return torch.cat([self.net(x) for x in inputs.split(65536)]) if len(inputs) else inputs.new_zeros(0)

    def _state(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "factor_mean": self.factor_mean, "factor_std": self.factor_std}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.factor_mean, self.factor_std = state["factor_mean"].to(self.device), state["factor_std"].to(self.device)
        self.net = RewardNet(len(self.factor_mean), self.config.hidden_sizes, torch.Generator()).to(self.device)
        self.net.load_state_dict(state["net"])


class ReturnDecomposition(_LearnedDecomposer):
    """RD: reward network on raw ``[s, a]``, whole episodes, loss
    ``((1/T) sum_t r_hat_t - R/T)^2`` (LaRe_RD's per-step scale)."""

    method = "rd"

    def __init__(self, config: RDConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(IdentityFactors(), config or RDConfig(), device)


class RandomizedReturnDecomposition(_LearnedDecomposer):
    """RRD: reward network on raw ``[s, a]``, ``min(K, T)`` random steps per episode
    without replacement; ``config.bias_correction`` subtracts ``(1 - K/T) s_I^2 / K``."""

    def __init__(self, config: RRDConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(IdentityFactors(), config or RRDConfig(), device)

    @property
    def method(self) -> str:
        return "rrd-unbiased" if self.config.bias_correction else "rrd"


class LatentRewardDecoder(_LearnedDecomposer):
    """LaRe decoder: ``r_hat = f(standardise(phi(s, a)))`` with ``phi`` a
    factor encoder (hand-written, LLM-written or identity; its name and source are recorded in
    reports and relabelling metadata), trained with the RRD objective."""

    method = "lare"
    standardize = True

    def __init__(
        self, encoder: FactorEncoder, config: LaReConfig | None = None, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(encoder, config or LaReConfig(), device)


def _safe_std(x: torch.Tensor) -> torch.Tensor:
    """Per-column std ``[K]``; constant columns get 1 so they standardise to 0."""
    std = x.std(0, unbiased=False) if len(x) > 1 else torch.ones_like(x[0])
    return torch.where(std > 1e-6, std, torch.ones_like(std))


# ------------------------------------------------------------------------------ loading
_CLASSES = {
    cls.__name__: cls for cls in (IRCR, ReturnDecomposition, RandomizedReturnDecomposition, LatentRewardDecoder)
}
_CONFIGS = {
    "IRCR": IRCRConfig,
    "ReturnDecomposition": RDConfig,
    "RandomizedReturnDecomposition": RRDConfig,
    "LatentRewardDecoder": LaReConfig,
}


def load_decomposer(
    path: str | Path, device: str | torch.device = "cpu", encoder: FactorEncoder | None = None
) -> Decomposer:
    """Restore a decomposer written by ``save``. Built-in encoders (identity, hand-written) are
    rebuilt from their saved name; any other encoder (e.g. LLM-written) must be given as
    ``encoder`` and must carry the saved name."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("class") not in _CLASSES:
        raise ValueError(f"{path} is not a saved decomposer (expected one of {sorted(_CLASSES)})")
    cls, config = _CLASSES[blob["class"]], _CONFIGS[blob["class"]](**blob["config"])
    if cls is LatentRewardDecoder:
        if encoder is None:
            encoder = encoder_by_name(blob["encoder"])
        elif encoder.name != blob["encoder"]:
            raise ValueError(f"encoder is {encoder.name!r} but the decomposer was fitted with {blob['encoder']!r}")
        obj = cls(encoder, config, device)
    else:
        obj = cls(config, device)
    obj._load_state(blob["state"])
    obj.report = FitReport(**blob["report"])
    return obj
