"""Rank metrics the reports use: ROC AUC and Spearman's rank correlation."""

from __future__ import annotations

import numpy as np


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC: probability that a positive scores above a negative (ties count half)."""
    scores = np.concatenate([positive, negative])
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="mergesort")
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores[order][np.diff(scores[order], prepend=np.nan) == 0]):  # average tied ranks
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Rank correlation (ties by order); ``None`` when either side is constant or has < 2 values."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])
