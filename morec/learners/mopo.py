"""MOPO (Yu et al., 2020): SAC on model rollouts whose rewards carry the uncertainty penalty
``lambda * max over members of ||sigma||``. The penalty is applied by the rollout engine
(``RolloutConfig.penalty_coef``), so the learner is plain model-based SAC."""

from __future__ import annotations

from morec.learners.sac import ModelBasedSAC


class MOPO(ModelBasedSAC):
    """Model-based SAC; the pessimism lives in the model rewards it is given."""
