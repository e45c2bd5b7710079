"""Termination functions for gymnasium's MuJoCo locomotion tasks, computed from observations.

Every function has the signature ``fn(obs [B, D], act [B, A], next_obs [B, D]) -> done [B]``
(bool) and works on any device without host copies. It reproduces gymnasium's
``terminated`` flag (``hopper``/``walker2d``/``half_cheetah`` v4 and v5, which agree on it) from
``next_obs``. Two observation layouts are supported:

- ``"d4rl"``: gymnasium's default, ``[qpos[1:], clip(qvel, -10, 10)]`` (x position excluded);
- ``"neorl"``: ``[qpos, clip(qvel, -10, 10)]``, x position first, so every index shifts by one.

(HalfCheetah does not clip its velocities; it never terminates, so that does not matter here.)

Limits of exactness, all outside what a real episode produces:

- Hopper's env requires every unclipped velocity in (-100, 100); the observation clips them to
  [-10, 10], so a velocity of 100 or more cannot be seen and is not detected.
- A row holding any non-finite value is always done. The env agrees where the NaN reaches a
  checked entry (all of Hopper's, Walker2d's height and angle); elsewhere (Walker2d's other
  entries, HalfCheetah) it is a model-safety choice: a real MuJoCo state is never non-finite.
- Thresholds are compared in the input's dtype: float64 inputs match the env bit for bit; with
  float32 a value within float32 rounding of a bound may land on the other side.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from morec.tasks import DOMAINS, LAYOUTS, check_layout, domain_of

TerminationFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _finite(x: torch.Tensor) -> torch.Tensor:
    """[B, D] -> [B]: every entry of the row is finite."""
    return torch.isfinite(x).all(dim=-1)


def _hopper_done(next_obs: torch.Tensor, shift: int) -> torch.Tensor:
    """gymnasium Hopper: healthy iff z > 0.7, -0.2 < angle < 0.2 and every entry of
    ``state_vector()[2:]`` (angle, joints, velocities = ``next_obs[shift + 1:]``) lies strictly in
    (-100, 100), both bounds enforced. [B, D] -> [B]."""
    z, angle, state = next_obs[..., shift], next_obs[..., shift + 1], next_obs[..., shift + 1 :]
    healthy = (
        _finite(next_obs)
        & ((state > -100.0) & (state < 100.0)).all(dim=-1)
        & (z > 0.7)
        & (angle > -0.2)
        & (angle < 0.2)
    )
    return ~healthy


def _walker2d_done(next_obs: torch.Tensor, shift: int) -> torch.Tensor:
    """gymnasium Walker2d: healthy iff 0.8 < z < 2.0 and -1 < angle < 1; nothing else is
    checked by the env (non-finite rows are done, see the module docstring). [B, D] -> [B]."""
    z, angle = next_obs[..., shift], next_obs[..., shift + 1]
    healthy = _finite(next_obs) & (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0)
    return ~healthy


def _halfcheetah_done(next_obs: torch.Tensor, shift: int) -> torch.Tensor:
    """gymnasium HalfCheetah never terminates; only non-finite rows are done (model safety, see
    the module docstring). [B, D] -> [B]."""
    return ~_finite(next_obs)


_DONE = {"hopper": _hopper_done, "walker2d": _walker2d_done, "halfcheetah": _halfcheetah_done}
assert set(_DONE) == set(DOMAINS), "every known robot needs its termination function"


def _make(domain: str, layout: str) -> TerminationFn:
    shift = 1 if layout == "neorl" else 0
    obs_dim = DOMAINS[domain].obs_dim_for(layout)
    done = _DONE[domain]

    def termination_fn(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        if next_obs.shape[-1] != obs_dim:
            raise ValueError(
                f"{domain} termination ({layout} layout) expects next_obs [B, {obs_dim}], got {tuple(next_obs.shape)}"
            )
        return done(next_obs, shift)

    termination_fn.__name__ = termination_fn.__qualname__ = f"{domain}_{layout}_termination"
    return termination_fn


_REGISTRY: dict[tuple[str, str], TerminationFn] = {(d, lay): _make(d, lay) for d in _DONE for lay in LAYOUTS}


def parse_domain(task: str) -> str:
    """The domain of a task name: ``"Hopper-v4"``, ``"hopper-medium-v2"``,
    ``"Hopper-v3-low-100"`` and ``"hopper"`` all give ``"hopper"``. KeyError if unknown."""
    domain = domain_of(task)
    if domain is None:
        raise KeyError(
            f"no termination function for task {task!r}: known domains are {sorted(_DONE)} "
            "(as a domain, gymnasium id, D4RL or NeoRL name); for a custom task pass a callable "
            "fn(obs, act, next_obs) -> bool tensor [B]"
        )
    return domain


def get_termination_fn(task: str, layout: str = "d4rl") -> TerminationFn:
    """The termination function of a known task in the given observation layout."""
    check_layout(layout)
    return _REGISTRY[(parse_domain(task), layout)]


def resolve_termination_fn(task_or_fn: str | TerminationFn, layout: str = "d4rl") -> TerminationFn:
    """A task name goes through :func:`get_termination_fn`; a callable (custom task) is returned
    wrapped so each call checks that it gave a bool tensor of shape ``next_obs.shape[:-1]``."""
    check_layout(layout)
    if isinstance(task_or_fn, str):
        return get_termination_fn(task_or_fn, layout)
    if not callable(task_or_fn):
        raise TypeError(f"expected a task name or a callable, got {type(task_or_fn).__name__}")
    fn = task_or_fn
    name = getattr(fn, "__name__", repr(fn))

    def checked_termination_fn(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        done = fn(obs, act, next_obs)
        if not isinstance(done, torch.Tensor) or done.dtype != torch.bool:
            kind = f"a {done.dtype} tensor" if isinstance(done, torch.Tensor) else type(done).__name__
            raise TypeError(f"termination function {name} must return a bool tensor, got {kind}")
        if done.shape != next_obs.shape[:-1]:
            raise ValueError(
                f"termination function {name} must return shape {tuple(next_obs.shape[:-1])} "
                f"(one flag per row of next_obs), got {tuple(done.shape)}"
            )
        return done

    checked_termination_fn.__wrapped__ = fn  # type: ignore[attr-defined]
    return checked_termination_fn
