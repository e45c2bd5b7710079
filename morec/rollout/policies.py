"""Tensor policies for model rollouts and model-error checks: ``obs [B, O] -> act [B, A]``."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from morec.collect.behaviour import SACConfig, build_sac
from morec.collect.envs import make_env
from morec.io import atomic_write

TensorPolicy = Callable[[torch.Tensor], torch.Tensor]


def load_sac_actor(path: str | Path, env_id: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The actor of a behaviour-SAC checkpoint written by ``morec collect`` (``policy_<step>.pt``);
    the hidden size is read from the weights."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    first = next(v for k, v in state.items() if k.endswith("weight"))
    env = make_env(env_id)
    if first.shape[1] != env.observation_space.shape[0]:
        raise ValueError(
            f"{path} takes observations of size {first.shape[1]}, but {env_id} has {env.observation_space.shape[0]}"
        )
    algo = build_sac(
        env.observation_space.shape[0], env.action_space, SACConfig(hidden_size=first.shape[0]), str(device)
    )
    algo.policy.load_state_dict(state)
    return algo.policy.actor.eval()


class _SacMode(torch.nn.Module):
    """A SAC actor's deterministic action ``tanh(mu)``: observations ``[B, O]`` -> actions ``[B, A]``."""

    def __init__(self, actor: torch.nn.Module):
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        (mu, _), _ = self.actor(obs)
        return torch.tanh(mu)


def export_actor_mode(actor: torch.nn.Module, obs_dim: int, out: str | Path) -> Path:
    """Save a SAC actor's deterministic (mode) policy, on the CPU, as TorchScript: the format
    ``morec eval-model --policy torchscript`` reads. The actor itself is left as it is. Returns ``out``.
    Tracing warns about tianshou's ``torch.as_tensor(obs)``; on a float32 tensor that is the input
    itself, so the trace is right for any batch (tested) and the warning is silenced. torch 2.13 also
    deprecates ``torch.jit.trace`` itself; the files still load with ``torch.jit.load``, and that
    warning is silenced too (a move to ``torch.export`` is due before TorchScript goes)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=DeprecationWarning)
        module = torch.jit.trace(_SacMode(copy.deepcopy(actor).cpu()).eval(), torch.zeros(2, obs_dim))
    return atomic_write(out, lambda tmp: module.save(str(tmp)))


def export_sac_actor(checkpoint: str | Path, env_id: str, out: str | Path) -> Path:
    """Save the deterministic (mode) policy of a ``morec collect`` checkpoint as TorchScript (see
    :func:`export_actor_mode`). Returns ``out``."""
    actor = load_sac_actor(checkpoint, env_id)
    obs_dim = next(v for k, v in actor.state_dict().items() if k.endswith("weight")).shape[1]
    return export_actor_mode(actor, obs_dim, out)


# ------------------------------------------------------------------ common random numbers
# Two rollouts from the same start states (filtered and unfiltered) must see the same policy noise
# at the same start row and step, whichever rows are still alive. A row policy takes the start-row
# index of each live row and the step, and reads its noise from a table ``[H, N, A]``.
RowPolicy = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]  # (obs [B, O], rows [B], step) -> act [B, A]


def noise_table(horizon: int, rows: int, dim: int, seed: int, device, uniform: bool = False) -> torch.Tensor:
    """``[H, N, D]`` standard normal (or uniform on [0, 1)) draws fixed by ``seed``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    draw = torch.rand if uniform else torch.randn
    return draw((horizon, rows, dim), device=device, generator=gen)


def random_row_policy(act_dim: int, horizon: int, rows: int, seed: int, device) -> RowPolicy:
    """Uniform actions in [-1, 1], one fixed draw per (start row, step)."""
    table = noise_table(horizon, rows, act_dim, seed, device, uniform=True) * 2 - 1
    return lambda obs, row, step: table[step, row]


def actor_row_policy(
    actor: torch.nn.Module, act_dim: int, horizon: int, rows: int, seed: int, device, noise_std: float = 0.0
) -> RowPolicy:
    """A SAC actor's sample (plus ``noise_std`` Gaussian action noise, clipped to [-1, 1]) with
    its noise fixed per (start row, step)."""
    pre, extra = noise_table(horizon, rows, 2 * act_dim, seed, device).split(act_dim, dim=-1)

    @torch.no_grad()
    def act(obs, row, step):
        (mu, sigma), _ = actor(obs)
        a = torch.tanh(mu + sigma * pre[step, row]) + noise_std * extra[step, row]
        return a.clamp(-1.0, 1.0)

    return act


def deterministic_row_policy(policy: TensorPolicy) -> RowPolicy:
    return lambda obs, row, step: policy(obs)


# ------------------------------------------------------------------ TorchScript policies
def load_torchscript(path: str | Path, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """``torch.jit.load`` in eval mode, without torch 2.13's deprecation warning for it (see
    :func:`export_actor_mode`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load", category=DeprecationWarning)
        return torch.jit.load(str(path), map_location=device).eval()


def load_torchscript_policy(
    path: str | Path, obs_dim: int, act_dim: int, device: str | torch.device = "cpu"
) -> TensorPolicy:
    """A deterministic policy from a TorchScript file mapping observations ``[B, O]`` float32 to
    actions ``[B, A]`` (clipped to [-1, 1]). A missing file, a file that is not TorchScript and a
    module that does not map ``[B, obs_dim]`` to ``[B, act_dim]`` raise errors naming the fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"policy file {path} does not exist; give the path of a TorchScript module "
            "(torch.jit.script(policy).save(path))"
        )
    try:
        module = load_torchscript(path, device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"{path} is not a TorchScript module ({str(err).strip().splitlines()[0]}); save the policy "
            "with torch.jit.script(policy).save(path) or torch.jit.trace(policy, example_obs).save(path)"
        ) from None
    probe = torch.zeros(2, obs_dim, device=device)
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as err:  # noqa: BLE001  # whatever the scripted code raises, it means the shapes do not fit
        raise ValueError(
            f"{path} fails on observations of shape [B, {obs_dim}] for this task "
            f"({str(err).strip().splitlines()[-1][:200]}); it must map [B, {obs_dim}] float32 to [B, {act_dim}]"
        ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, act_dim):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{path} maps observations [2, {obs_dim}] to {got}; this task needs actions [B, {act_dim}] in [-1, 1]"
        )

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        return module(obs.float()).float().clamp(-1.0, 1.0)

    return act
