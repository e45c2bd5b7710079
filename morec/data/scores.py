"""Normalised scores: ``100 * (return - ref_min) / (ref_max - ref_min)``.

- D4RL tasks (and gymnasium Hopper/HalfCheetah/Walker2d, whose v4 models D4RL's v2 data come
  from) use D4RL's reference returns from ``d4rl/infos.py``: a random policy and an expert SAC.
- NeoRL has **no official normaliser**; its paper reports raw returns. For NeoRL names we use the
  random/expert returns of a widely copied third-party helper (HalfCheetah -298/12284, Hopper
  5/3294, Walker2d 1/5143). Report raw returns beside them.
"""

from __future__ import annotations

import numpy as np

from morec.tasks import get_task


def reference_returns(task: str) -> tuple[float, float]:
    """``(ref_min, ref_max)`` for a task name (D4RL, NeoRL, bare domain or gymnasium id)."""
    spec = get_task(task)
    if spec.benchmark == "neorl":
        return spec.domain.neorl_ref_min, spec.domain.neorl_ref_max
    return spec.domain.d4rl_ref_min, spec.domain.d4rl_ref_max


def normalized_score(task: str, returns: float | np.ndarray) -> float | np.ndarray:
    """Normalised score(s) of episode return(s) on ``task``; same shape as ``returns``."""
    lo, hi = reference_returns(task)
    score = 100.0 * (np.asarray(returns, dtype=np.float64) - lo) / (hi - lo)
    return float(score) if score.ndim == 0 else score
