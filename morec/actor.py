"""The SAC actor every SAC in the project uses: tianshou's state-conditioned Gaussian
(``ContinuousActorProbabilistic``, unbounded mean, tanh applied when sampling). The behaviour SAC
(:mod:`morec.collect.behaviour`) and the offline learners and behaviour cloning (:mod:`morec.learners`)
build it here."""

from __future__ import annotations

from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import ContinuousActorProbabilistic


def build_actor(obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...]) -> ContinuousActorProbabilistic:
    """``obs [B, O] -> ((mu, sigma) [B, A], state)`` through an MLP of ``hidden_sizes``."""
    return ContinuousActorProbabilistic(
        preprocess_net=Net(state_shape=obs_dim, hidden_sizes=hidden_sizes),
        action_shape=act_dim,
        unbounded=True,
        conditioned_sigma=True,
    )
