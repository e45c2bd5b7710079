"""The dynamics ensemble's settings (:class:`EnsembleConfig`), free of torch so that a training
config validates without it."""

from __future__ import annotations

from dataclasses import dataclass

ACTIVATION_NAMES = ("swish", "relu")  # the hidden layers' activation (morec.dynamics.layers.ACTIVATIONS)


@dataclass
class EnsembleConfig:
    """Architecture and training settings; defaults are OfflineRL-Kit's (MOPO/MOBILE/MOREC)."""

    num_members: int = 7
    num_elites: int = 5
    hidden_sizes: tuple[int, ...] = (200, 200, 200, 200)
    activation: str = "swish"
    weight_decays: tuple[float, ...] = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)  # hidden layers, then output
    init_max_logvar: float = 0.5
    init_min_logvar: float = -10.0
    logvar_bound_coef: float = 0.01
    lr: float = 1e-3
    batch_size: int = 256
    holdout_ratio: float = 0.2
    max_holdout: int = 1000
    bootstrap: bool = True  # each member trains on its own resample (with replacement) of the train split
    improvement_threshold: float = 0.01  # relative holdout-MSE improvement that resets patience
    max_epochs_since_update: int = 5
    max_epochs: int | None = None
    max_seconds: float | None = None  # wall-clock budget, checked after each epoch (the result then depends on speed)

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        self.weight_decays = tuple(self.weight_decays)
        if len(self.weight_decays) != len(self.hidden_sizes) + 1:
            raise ValueError(
                f"weight_decays needs one entry per hidden layer plus the output layer "
                f"({len(self.hidden_sizes) + 1}), got {len(self.weight_decays)}"
            )
        if not 0 < self.num_elites <= self.num_members:
            raise ValueError(f"num_elites must be in 1..num_members={self.num_members}, got {self.num_elites}")
        for name in ("max_epochs", "max_seconds"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive or None (no cap), got {getattr(self, name)}")
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(f"activation must be one of {sorted(ACTIVATION_NAMES)}, got {self.activation!r}")
