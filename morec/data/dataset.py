"""`OfflineDataset`: a validated, flat table of transitions with episode structure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from morec.data import validation as V
from morec.data.errors import DatasetError
from morec.tasks import DOMAINS, get_task

DISCONTINUITY_TOL = 1e-5  # relative tolerance when comparing next_observations[i] with observations[i + 1]


@dataclass(frozen=True)
class ArrayStats:
    """Per-dimension statistics of one field, each of shape ``[D]`` (or scalars for ``[N]`` fields)."""

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray


@dataclass
class OfflineDataset:
    """Transitions ``(s, a, r, s', terminal, timeout)``, row-aligned, in recording order.

    Shapes: ``observations [N, obs_dim]``, ``actions [N, act_dim]``, ``rewards [N]`` float32,
    ``next_observations [N, obs_dim]`` float32, ``terminals [N]`` and ``timeouts [N]`` bool.
    ``metadata`` holds at least ``source``, ``env_id`` and ``layout`` (``"d4rl"``, ``"neorl"`` or
    ``None`` for data with no known environment). ``infos`` holds optional per-row extras
    (``qpos``, ``qvel``, ...), each with ``N`` rows.

    Construction validates shapes, dtypes and finiteness; use :meth:`from_arrays` to build one
    from raw arrays (it can derive ``next_observations`` and check actions and the environment).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    infos: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.observations = V.as_matrix("observations", self.observations)
        self.actions = V.as_matrix("actions", self.actions)
        self.next_observations = V.as_matrix("next_observations", self.next_observations)
        self.rewards = V.as_vector("rewards", self.rewards, np.float32)
        self.terminals = V.as_vector("terminals", self.terminals, bool)
        self.timeouts = V.as_vector("timeouts", self.timeouts, bool)
        V.check_lengths({**self.arrays(), **{f"infos/{k}": v for k, v in self.infos.items()}})
        if self.next_observations.shape[1] != self.obs_dim:
            raise DatasetError(
                f"field 'next_observations' has {self.next_observations.shape[1]} columns but 'observations' has "
                f"{self.obs_dim}; both must describe the same state"
            )
        for name in ("observations", "actions", "rewards", "next_observations"):
            V.check_finite(name, getattr(self, name))
        self.metadata = {"source": None, "env_id": None, "layout": None, **self.metadata}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        observations: Any,
        actions: Any,
        rewards: Any,
        terminals: Any,
        timeouts: Any = None,
        next_observations: Any = None,
        *,
        env_id: str | None = None,
        layout: str | None = None,
        metadata: dict[str, Any] | None = None,
        infos: dict[str, Any] | None = None,
        clip_actions: bool = False,
        action_low: float | np.ndarray | None = None,
        action_high: float | np.ndarray | None = None,
    ) -> OfflineDataset:
        """Build and validate a dataset from raw arrays.

        ``timeouts`` default to all False. Without ``next_observations``, each transition's next
        observation is the following row within its episode; the last step of every episode has
        none and is dropped (counted in ``metadata["dropped_last_steps"]``; the new last step is
        marked as a timeout). ``env_id`` (a gymnasium id or a benchmark task name) enables the
        observation-size and action-space checks; ``action_low``/``action_high`` give bounds for
        custom tasks.
        """
        meta = dict(metadata or {})
        fields = {
            "observations": V.as_matrix("observations", observations),
            "actions": V.as_matrix("actions", actions),
            "rewards": V.as_vector("rewards", rewards, np.float32),
            "terminals": V.as_vector("terminals", terminals, bool),
        }
        n = len(fields["observations"])
        fields["timeouts"] = np.zeros(n, bool) if timeouts is None else V.as_vector("timeouts", timeouts, bool)
        extra = {k: np.asarray(v) for k, v in (infos or {}).items()}
        V.check_lengths({**fields, **{f"infos/{k}": v for k, v in extra.items()}})
        if next_observations is None:
            fields, extra, dropped = _derive_next_observations(fields, extra)
            meta["dropped_last_steps"] = dropped
            meta["next_observations"] = "derived"
            if not len(fields["observations"]):
                raise DatasetError(
                    "no transition is left after deriving next_observations (every episode has a single step); "
                    "provide 'next_observations' explicitly"
                )
        else:
            fields["next_observations"] = next_observations
        if env_id is not None:
            try:
                task = get_task(env_id)
            except KeyError as err:
                raise DatasetError(err.args[0]) from err
            layout = layout or (meta.get("layout") or task.layout)
            meta.setdefault("task", task.domain.name)
            meta["env_id"] = task.eval_env_id
            meta.setdefault("benchmark", task.benchmark)
            V.check_obs_dim(
                fields["observations"].shape[1], task.domain.obs_dim_for(layout), f"{env_id} ({layout} layout)"
            )
            if action_low is None:
                action_low, action_high = task.domain.action_low, task.domain.action_high
        meta["layout"] = layout if layout is not None else meta.get("layout")
        if (action_low is None) != (action_high is None):
            raise ValueError("give both action_low and action_high, or neither")
        if action_low is not None:
            fields["actions"] = V.check_actions(fields["actions"], action_low, action_high, clip_actions)
            meta["actions_clipped"] = bool(clip_actions)
        return cls(**fields, metadata=meta, infos=extra)

    def __repr__(self) -> str:
        """One screen: sizes, episodes, returns, value ranges and metadata, never whole arrays."""
        meta = self.metadata
        where = ", ".join(f"{k} {meta[k]}" for k in ("env_id", "layout") if meta.get(k)) or "environment unknown"
        lengths, rets = self.episode_lengths(), self.returns()
        lines = [
            f"OfflineDataset: {len(self):,} transitions, {len(rets):,} episodes ({where})",
            f"  observations {_shape(self.observations)}  range [{self.observations.min():.3g}, "
            f"{self.observations.max():.3g}]",
            f"  actions      {_shape(self.actions)}  range [{self.actions.min():.3g}, {self.actions.max():.3g}]",
            f"  rewards      {_shape(self.rewards)}  mean {self.rewards.mean():.3g}, range [{self.rewards.min():.3g}, "
            f"{self.rewards.max():.3g}]",
            f"  returns      mean {rets.mean():.1f} +- {rets.std():.1f}, range [{rets.min():.1f}, {rets.max():.1f}]; "
            f"episode lengths {lengths.min()}..{lengths.max()}",
            f"  ends         {int(self.terminals.sum())} terminals, {int(self.timeouts.sum())} timeouts, "
            f"{int(self.unflagged_breaks().sum())} unflagged breaks",
        ]
        if self.infos:
            lines.append("  infos        " + ", ".join(f"{k} {_shape(v)}" for k, v in self.infos.items()))
        shown = {k: v for k, v in meta.items() if k not in ("env_id", "layout") and v is not None}
        for key, value in shown.items():
            text = str(value)
            lines.append(f"  {key}: {text if len(text) <= 70 else text[:67] + '...'}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ shape facts
    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        """The six transition fields by their D4RL key names."""
        return {
            "observations": self.observations,
            "actions": self.actions,
            "rewards": self.rewards,
            "next_observations": self.next_observations,
            "terminals": self.terminals,
            "timeouts": self.timeouts,
        }

    # ------------------------------------------------------------------ episodes
    def unflagged_breaks(self) -> np.ndarray:
        """``[N]`` bool: rows where the next row does not continue this one (``next_observations[i]``
        differs from ``observations[i + 1]``) although neither flag is set. D4RL's medium-replay
        files have such rows (D4RL#162); they are episode boundaries too."""
        cont = np.zeros(len(self), bool)
        if len(self) > 1:
            nxt, following = self.next_observations[:-1], self.observations[1:]
            gap = np.abs(nxt - following) > DISCONTINUITY_TOL * (1.0 + np.abs(following))
            cont[:-1] = gap.any(axis=1)
        return cont & ~(self.terminals | self.timeouts)

    def episode_ends(self) -> np.ndarray:
        """Indices of the last row of each episode: terminal, timeout, an unflagged break, or the
        final row (an unfinished last episode counts as an episode)."""
        is_end = self.terminals | self.timeouts | self.unflagged_breaks()
        is_end[-1] = True
        return np.flatnonzero(is_end)

    def episode_starts(self) -> np.ndarray:
        ends = self.episode_ends()
        return np.concatenate([[0], ends[:-1] + 1])

    def episodes(self) -> Iterator[slice]:
        """Row slices, one per episode, in order."""
        for start, end in zip(self.episode_starts(), self.episode_ends()):
            yield slice(int(start), int(end) + 1)

    def episode_lengths(self) -> np.ndarray:
        return self.episode_ends() - self.episode_starts() + 1

    def returns(self) -> np.ndarray:
        """``[num_episodes]`` float64: the undiscounted reward sum of each episode."""
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts())

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict[str, ArrayStats]:
        """Mean, std, min and max per dimension of the float fields."""
        out = {}
        for name in ("observations", "actions", "rewards", "next_observations"):
            arr = getattr(self, name).astype(np.float64)
            out[name] = ArrayStats(arr.mean(0), arr.std(0), arr.min(0), arr.max(0))
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-friendly overview: sizes, episodes, return statistics and metadata."""
        rets = self.returns()
        return {
            "transitions": len(self),
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "episodes": int(len(rets)),
            "terminals": int(self.terminals.sum()),
            "timeouts": int(self.timeouts.sum()),
            "unflagged_breaks": int(self.unflagged_breaks().sum()),
            "return_mean": float(rets.mean()),
            "return_std": float(rets.std()),
            "return_min": float(rets.min()),
            "return_max": float(rets.max()),
            "metadata": {k: v for k, v in self.metadata.items() if _is_jsonable(v)},
        }

    # ------------------------------------------------------------------ subsets
    def take(self, indices: np.ndarray) -> OfflineDataset:
        """The rows at ``indices`` (in that order), with the same metadata."""
        idx = np.asarray(indices)
        return OfflineDataset(
            **{k: v[idx] for k, v in self.arrays().items()},
            metadata=dict(self.metadata),
            infos={k: v[idx] for k, v in self.infos.items()},
        )

    def split(self, holdout: float, seed: int = 0) -> tuple[OfflineDataset, OfflineDataset]:
        """Random transition-level split into ``(train, holdout)``; each keeps recording order, so
        episode boundaries stay detectable. ``holdout`` is a fraction in (0, 1)."""
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout}")
        n_hold = max(1, int(round(holdout * len(self))))
        if n_hold >= len(self):
            raise DatasetError(f"cannot hold out {n_hold} of {len(self)} transitions; the dataset is too small")
        perm = np.random.default_rng(seed).permutation(len(self))
        return self.take(np.sort(perm[n_hold:])), self.take(np.sort(perm[:n_hold]))

    def episode_subset(self, transitions: int, seed: int = 0) -> OfflineDataset:
        """Whole episodes, in recording order, holding at most ``transitions`` rows: the episodes are
        taken in a random order fixed by ``seed`` while they fit, so for one seed a smaller subset
        is always part of a larger one (nested subsets for data-size studies)."""
        if transitions > len(self):
            raise DatasetError(
                f"a subset of {transitions:,} transitions was asked of a dataset of {len(self):,}; "
                f"ask for at most {len(self):,}"
            )
        episodes = list(self.episodes())
        order = np.random.default_rng(seed).permutation(len(episodes))
        lengths = np.array([episodes[i].stop - episodes[i].start for i in order])
        kept = order[: int(np.searchsorted(np.cumsum(lengths), transitions, side="right"))]
        if not len(kept):
            raise DatasetError(
                f"no whole episode fits in {transitions:,} transitions (the first drawn has {lengths[0]:,})"
            )
        return self.take(np.concatenate([np.arange(episodes[i].start, episodes[i].stop) for i in np.sort(kept)]))

    def sample(self, n: int, rng: np.random.Generator) -> OfflineDataset:
        """``n`` rows drawn uniformly with replacement."""
        return self.take(rng.integers(0, len(self), size=n))

    @staticmethod
    def concatenate(parts: list[OfflineDataset], metadata: dict[str, Any] | None = None) -> OfflineDataset:
        """Rows of ``parts`` one after the other. Each part's last row is marked a timeout unless it
        is terminal, so no episode runs across a seam."""
        if not parts:
            raise DatasetError("nothing to concatenate: give at least one dataset")
        arrays = {k: np.concatenate([p.arrays()[k] for p in parts]) for k in parts[0].arrays()}
        seams = np.cumsum([len(p) for p in parts]) - 1
        arrays["timeouts"][seams] |= ~arrays["terminals"][seams]
        info_keys = set.intersection(*(set(p.infos) for p in parts))
        infos = {k: np.concatenate([p.infos[k] for p in parts]) for k in sorted(info_keys)}
        return OfflineDataset(**arrays, metadata=metadata or dict(parts[0].metadata), infos=infos)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write in D4RL hdf5 format (``.hdf5``/``.h5``) or NeoRL npz format (``.npz``)."""
        from morec.data.formats import save_d4rl_hdf5, save_neorl_npz

        path = Path(path)
        if path.suffix in (".hdf5", ".h5"):
            return save_d4rl_hdf5(self, path)
        if path.suffix == ".npz":
            return save_neorl_npz(self, path)
        raise ValueError(f"cannot tell the format of {path}: use a .hdf5 (D4RL) or .npz (NeoRL) suffix")

    @property
    def domain(self) -> str | None:
        """The robot (``"hopper"`` ...) when the data come from a known MuJoCo task."""
        task = self.metadata.get("task")
        return task if task in DOMAINS else None


def _derive_next_observations(
    fields: dict[str, np.ndarray], infos: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """``next_observations[i] = observations[i + 1]`` within each episode; drop each episode's
    last step (its successor is unknown) and mark the new last step as a timeout."""
    obs = fields["observations"]
    n = len(obs)
    is_end = fields["terminals"] | fields["timeouts"]
    is_end[-1] = True
    keep = ~is_end
    out = {k: v[keep] for k, v in fields.items()}
    out["next_observations"] = obs[np.flatnonzero(keep) + 1]
    # a kept row followed by a dropped row is now the last step of its (shortened) episode
    new_last = keep.copy()
    new_last[:-1] &= is_end[1:]
    new_last[-1] = False
    out["timeouts"] = new_last[keep] | out["timeouts"]
    return out, {k: v[keep] for k, v in infos.items()}, int(n - keep.sum())


def _shape(arr: np.ndarray) -> str:
    return f"{list(arr.shape)} {arr.dtype}"


def _is_jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False
