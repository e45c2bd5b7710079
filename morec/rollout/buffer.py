"""`ModelBuffer`: a fixed-capacity FIFO ring buffer of transitions held as tensors on a device."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TransitionBatch:
    """``observations [B, O]``, ``actions [B, A]``, ``rewards [B]``, ``next_observations [B, O]``,
    ``terminals [B]`` (bool), all on one device."""

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    terminals: torch.Tensor

    def __len__(self) -> int:
        return len(self.observations)


class ModelBuffer:
    """Model-generated transitions. ``add`` writes a whole batch with one indexed copy per field
    (the oldest rows are overwritten once full); ``sample`` draws uniformly with replacement."""

    FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: str | torch.device = "cpu"):
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity, self.device = int(capacity), torch.device(device)
        self.storage = TransitionBatch(
            observations=torch.zeros(capacity, obs_dim, device=self.device),
            actions=torch.zeros(capacity, act_dim, device=self.device),
            rewards=torch.zeros(capacity, device=self.device),
            next_observations=torch.zeros(capacity, obs_dim, device=self.device),
            terminals=torch.zeros(capacity, dtype=torch.bool, device=self.device),
        )
        self.position = 0  # next row to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: TransitionBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        if n > self.capacity:  # only the newest `capacity` rows would survive anyway
            batch = TransitionBatch(*(getattr(batch, f)[-self.capacity :] for f in self.FIELDS))
            n = self.capacity
        rows = (self.position + torch.arange(n, device=self.device)) % self.capacity
        for name in self.FIELDS:
            getattr(self.storage, name)[rows] = getattr(batch, name).to(self.device)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> TransitionBatch:
        return self.rows(self.draw_rows(batch_size, generator))

    def draw_rows(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[batch_size]`` stored row indices, uniform with replacement."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty ModelBuffer; run a rollout first")
        return torch.randint(self.size, (batch_size,), device=self.device, generator=generator)

    def rows(self, rows: torch.Tensor) -> TransitionBatch:
        return TransitionBatch(*(getattr(self.storage, f)[rows] for f in self.FIELDS))

    def all(self) -> TransitionBatch:
        """Every stored transition, oldest first."""
        start = self.position if self.size == self.capacity else 0
        return self.rows((start + torch.arange(self.size, device=self.device)) % self.capacity)

    def state_dict(self) -> dict:
        """Stored rows (on the CPU) and the write position, for checkpoints."""
        return {
            "position": self.position,
            "size": self.size,
            **{f: getattr(self.storage, f)[: self.size].cpu() for f in self.FIELDS},
        }

    def load_state_dict(self, state: dict) -> None:
        if (
            state["observations"].shape[1:] != self.storage.observations.shape[1:]
            or len(state["observations"]) > self.capacity
        ):
            raise ValueError("buffer state does not fit this buffer (other dimensions or a larger capacity)")
        for f in self.FIELDS:
            getattr(self.storage, f)[: len(state[f])] = state[f].to(self.device)
        self.position, self.size = int(state["position"]), int(state["size"])
