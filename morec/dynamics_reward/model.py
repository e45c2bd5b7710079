"""`DynamicsReward`: MOREC's learned dynamics reward r_D(s, a, s') from an ensemble of historical
discriminator snapshots.

Features: ``(s_n, a_n, s'_n - s_n)`` with observations min-max scaled to [-0.8, 0.8] and actions
to [-1, 1] using the offline data's range. For snapshot ``i`` with logit ``l_i(x)``, mean logit on
real data ``e_i`` and on generated data ``g_i`` (measured when it was taken)::

    x_i = 2 * (clamp(l_i, g_i, e_i) - g_i) / (e_i - g_i) - 1          # in [-1, 1]
    r_D = -log(1 - mean_i sigmoid(x_i))                                # in [0.313, 1.313]

The snapshots are stored as one stacked network (``[N, in, out]`` weights) and scored one member
at a time (:meth:`Discriminator.member_logits`); ``score_dtype`` (``filter.score_dtype``) may run
their hidden layers in bfloat16.
Training lives in :mod:`morec.dynamics_reward.training`. A trained reward also carries the task it was
trained for (``env_id``, ``layout``) and the held-out real transitions that calibrated it, which
``threshold: auto`` and the false-truncation rate use.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from morec.cpu_features import warn_if_bfloat16_is_emulated
from morec.dynamics.layers import EnsembleLinear, relu_
from morec.dynamics_reward.config import DynamicsRewardConfig, check_score_dtype
from morec.io import atomic_torch_save
from morec.row_blocks import CPU_BLOCK_ROWS, row_blocks

CHECKPOINT_FILE = "dynamics_reward.pt"
OBS_RANGE = 0.8  # observations are scaled to [-0.8, 0.8], as in the released MOREC code
HELDOUT_FIELDS = ("heldout_obs", "heldout_act", "heldout_next_obs")


class Discriminator(nn.Module):
    """``E`` ReLU MLPs run as one: features ``[B, F]`` (or ``[E, B, F]``) -> logits ``[E, B]``."""

    def __init__(
        self,
        num_members: int,
        in_features: int,
        hidden_sizes: tuple[int, ...],
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = (in_features, *hidden_sizes, 1)
        self.layers = nn.ModuleList(
            EnsembleLinear(num_members, i, o, generator=generator) for i, o in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)[..., 0]

    def member_logits(
        self, x: torch.Tensor, hidden_dtype: torch.dtype = torch.float32, block_rows: int | None = None
    ) -> torch.Tensor:
        """Features ``[M, F]`` -> logits ``[E, M]``, one member at a time, each layer one fused
        ``addmm`` (on one CPU thread 1.2x as fast as the batched product over members, which writes
        every member's activations before the next layer reads them: docs/speed.md). On the CPU a
        member's layers take ``block_rows`` rows at a time (default ``CPU_BLOCK_ROWS``:
        :mod:`morec.row_blocks`), on a GPU all of them. ``hidden_dtype``: the hidden layers'
        precision (bfloat16: inputs, weights and activations rounded to it); the output layer
        always runs in float32."""
        hidden, last = self.layers[:-1], self.layers[-1]
        num_members = last.weight.shape[0]
        if block_rows is None:
            block_rows = CPU_BLOCK_ROWS if x.device.type == "cpu" else max(len(x), 1)
        logits = x.new_empty((num_members, len(x)), dtype=torch.float32)
        for member in range(num_members):
            weights = [(layer.weight[member].to(hidden_dtype), layer.bias[member].to(hidden_dtype)) for layer in hidden]
            for rows in row_blocks(len(x), block_rows):
                h = x[rows].to(hidden_dtype)
                for weight, bias in weights:
                    h = relu_(torch.addmm(bias, h, weight))
                logits[member, rows] = torch.addmm(last.bias[member], h.to(torch.float32), last.weight[member])[:, 0]
        return logits

    @staticmethod
    def stack(
        snapshots: list[dict[str, torch.Tensor]], in_features: int, hidden_sizes: tuple[int, ...]
    ) -> Discriminator:
        """One ``N``-member network from ``N`` single-member state dicts."""
        net = Discriminator(len(snapshots), in_features, hidden_sizes)
        net.load_state_dict({k: torch.cat([s[k] for s in snapshots]) for k in snapshots[0]})
        return net


class DynamicsReward(nn.Module):
    """``reward(obs [..., O], act [..., A], next_obs [..., O]) -> r_D [...]``."""

    def __init__(self, obs_dim: int, act_dim: int, config: DynamicsRewardConfig | None = None, num_snapshots: int = 1):
        super().__init__()
        self.config = config or DynamicsRewardConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.in_features = 2 * obs_dim + act_dim
        self.register_buffer("obs_low", torch.zeros(obs_dim))
        self.register_buffer("obs_high", torch.ones(obs_dim))
        self.register_buffer("act_low", -torch.ones(act_dim))
        self.register_buffer("act_high", torch.ones(act_dim))
        self.register_buffer("real_logit", torch.ones(num_snapshots))  # e_i
        self.register_buffer("fake_logit", torch.zeros(num_snapshots))  # g_i
        self.snapshots = Discriminator(num_snapshots, self.in_features, self.config.hidden_sizes)
        self.env_id: str | None = None
        self.layout: str | None = None
        self.distilled_from: int | None = None  # a distilled reward: the teacher's snapshot count
        self.score_dtype = torch.float32  # the hidden layers' precision when scoring (set_score_dtype)
        for name in HELDOUT_FIELDS:  # real s [N, O], a [N, A], s' [N, O] never trained on (set after training)
            self.register_buffer(name, None, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.obs_low.device

    @property
    def num_snapshots(self) -> int:
        return len(self.real_logit)

    @property
    def heldout(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Held-out real transitions ``(s [N, O], a [N, A], s' [N, O])``, or ``None`` (older checkpoints)."""
        if self.heldout_obs is None:
            return None
        return self.heldout_obs, self.heldout_act, self.heldout_next_obs

    def heldout_part(self, part: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Half of the held-out transitions: ``"calibrate"`` (even rows) sets ``threshold: auto``,
        ``"measure"`` (odd rows) measures the false-truncation rate, so that measure is out of sample."""
        if self.heldout is None:
            return None
        start = {"calibrate": 0, "measure": 1}[part]
        return tuple(t[start::2] for t in self.heldout)

    def set_heldout(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> None:
        for name, value in zip(HELDOUT_FIELDS, (obs, act, next_obs)):
            setattr(self, name, value.detach().to(self.device, torch.float32))

    def set_score_dtype(self, name: str) -> DynamicsReward:
        """Score in ``name`` (one of :data:`~morec.dynamics_reward.config.SCORE_DTYPES`): the
        snapshots' hidden layers in that precision from now on, thresholds included."""
        self.score_dtype = getattr(torch, check_score_dtype(name))
        if self.score_dtype == torch.bfloat16:
            warn_if_bfloat16_is_emulated("filter.score_dtype=bfloat16", self.device)
        return self

    # ------------------------------------------------------------------ features
    def set_ranges(self, observations: np.ndarray, actions: np.ndarray) -> None:
        """Min-max ranges from the offline data (``[N, O]``, ``[N, A]``)."""
        self.obs_low.copy_(torch.as_tensor(observations.min(0)))
        self.obs_high.copy_(torch.as_tensor(observations.max(0)))
        self.act_low.copy_(torch.as_tensor(actions.min(0)))
        self.act_high.copy_(torch.as_tensor(actions.max(0)))

    def features(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``[..., 2O + A]``: normalised ``(s, a, s' - s)``."""
        obs_span = (self.obs_high - self.obs_low).clamp_min(1e-6)
        act_span = (self.act_high - self.act_low).clamp_min(1e-6)
        s = (obs - self.obs_low) / obs_span * (2 * OBS_RANGE) - OBS_RANGE
        s2 = (next_obs - self.obs_low) / obs_span * (2 * OBS_RANGE) - OBS_RANGE
        a = (act - self.act_low) / act_span * 2 - 1
        return torch.cat([s, a, s2 - s], dim=-1)

    def with_snapshots(
        self,
        states: list[dict[str, torch.Tensor]],
        real_logits: list[float],
        fake_logits: list[float],
        config: DynamicsRewardConfig | None = None,
    ) -> DynamicsReward:
        """A reward with this one's feature ranges and the given discriminator snapshots
        (single-member state dicts, shaped as ``config`` says: by default this reward's) and
        their calibration logits ``e_i``, ``g_i``."""
        config = config or self.config
        out = DynamicsReward(self.obs_dim, self.act_dim, config, num_snapshots=len(states)).to(self.device)
        for name in ("obs_low", "obs_high", "act_low", "act_high"):
            getattr(out, name).copy_(getattr(self, name))
        out.snapshots = Discriminator.stack(states, self.in_features, config.hidden_sizes).to(self.device)
        out.real_logit.copy_(torch.as_tensor(real_logits))
        out.fake_logit.copy_(torch.as_tensor(fake_logits))
        out.env_id, out.layout = self.env_id, self.layout
        if self.heldout is not None:
            out.set_heldout(*self.heldout)
        return out

    # ------------------------------------------------------------------ reward
    def calibrated(self, logits: torch.Tensor) -> torch.Tensor:
        """``[N, M]`` snapshot logits -> ``[N, M]`` in [-1, 1]: generated-data mean -> -1, real -> +1."""
        lo, hi = self.fake_logit[:, None], self.real_logit[:, None]
        clamped = torch.minimum(torch.maximum(logits, lo), hi)
        return 2 * (clamped - lo) / (hi - lo + 1e-7) - 1

    def forward(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        shape = torch.broadcast_shapes(obs.shape[:-1], act.shape[:-1], next_obs.shape[:-1])
        x = self.features(obs.expand(*shape, -1), act.expand(*shape, -1), next_obs.expand(*shape, -1))
        p = self.probability(x.reshape(-1, self.in_features))
        return (-torch.log(1 - p + 1e-9)).reshape(shape)

    def probability(self, features: torch.Tensor) -> torch.Tensor:
        """``features [M, F]`` -> ``p [M]``, the mean over snapshots of the calibrated sigmoid
        (``r_D = -log(1 - p)``)."""
        logits = self.snapshots.member_logits(features, self.score_dtype)  # [N, M]
        return torch.sigmoid(self.calibrated(logits)).mean(0)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "config": asdict(self.config),
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "env_id": self.env_id,
            "layout": self.layout,
            "distilled_from": self.distilled_from,
            "heldout": None if self.heldout is None else [t.detach().cpu() for t in self.heldout],
        }
        return atomic_torch_save(payload, directory / CHECKPOINT_FILE)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        device: str | torch.device = "cpu",
        obs_dim: int | None = None,
        act_dim: int | None = None,
        env_id: str | None = None,
        layout: str | None = None,
    ) -> DynamicsReward:
        """Load a saved reward; one trained for other sizes, another environment or layout is
        refused with a :class:`ValueError` naming the fix (checked where both sides are known)."""
        path = Path(directory) / CHECKPOINT_FILE
        if not path.exists():
            raise FileNotFoundError(f"no trained dynamics reward at {path}; run `morec train-reward` first")
        payload = torch.load(path, map_location="cpu", weights_only=False)
        for name, want in (("obs_dim", obs_dim), ("act_dim", act_dim), ("env_id", env_id), ("layout", layout)):
            have = payload.get(name)
            if want is not None and have is not None and have != want:
                raise ValueError(
                    f"dynamics reward at {path} was trained with {name}={have!r} but this task has "
                    f"{name}={want!r}; train a reward on this task's data (morec train-reward)"
                )
        n = len(payload["state_dict"]["real_logit"])
        model = cls(payload["obs_dim"], payload["act_dim"], DynamicsRewardConfig(**payload["config"]), num_snapshots=n)
        model.load_state_dict(payload["state_dict"])
        model.env_id, model.layout = payload.get("env_id"), payload.get("layout")
        model.distilled_from = payload.get("distilled_from")
        if payload.get("heldout") is not None:
            model.set_heldout(*payload["heldout"])
        return model.to(device).eval()
