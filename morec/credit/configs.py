"""Settings of the return decomposers (IRCR, RD, RRD, LaRe), free of torch so the command line
can read their defaults without importing it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IRCRConfig:
    """``normalize``: map credits to [0, 1] with the min and max credit of the fitted data."""

    normalize: bool = False


@dataclass
class RDConfig:
    """Reward network ``D -> hidden... -> 1`` (ReLU, Xavier init) and its Adam training. Each update
    draws ``max(1, batch_size // mean T)`` whole episodes."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    updates: int = 2000
    batch_size: int = 256

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive layer widths, got {self.hidden_sizes}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.updates < 1:
            raise ValueError(f"updates must be at least 1, got {self.updates}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass
class RRDConfig(RDConfig):
    """RRD (randomized return decomposition): ``subset_size`` K steps per episode, ``batch_size // K``
    episodes per update."""

    subset_size: int = 64
    bias_correction: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.subset_size < 1:
            raise ValueError(f"subset_size must be at least 1, got {self.subset_size}")
        if self.bias_correction and self.subset_size < 2:
            raise ValueError(
                "subset_size must be at least 2 with bias_correction (the sample variance needs two steps)"
            )


@dataclass
class LaReConfig(RRDConfig):
    """LaRe's decoder: RRD objective, bias-corrected by default (LaRe_RRDu)."""

    bias_correction: bool = True
