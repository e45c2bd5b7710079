"""`EnsembleDynamics`: a Gaussian ensemble over ``(s' - s, r)`` given ``(s, a)``.

The numerics are those the MOPO/MOBILE/MOREC results were produced with (OfflineRL-Kit's
ensemble): 7 members, 5 elites, 4 Swish layers of 200, per-layer weight decay, learned
log-variance bounds with soft clamping, inputs standardised on the training split.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from morec.dynamics.config import EnsembleConfig
from morec.dynamics.layers import ACTIVATIONS, EnsembleLinear, ensemble_linear, soft_clamp
from morec.io import atomic_torch_save
from morec.row_blocks import CPU_BLOCK_ROWS, row_blocks

CHECKPOINT_FILE = "dynamics.pt"


@dataclass
class TaskInfo:
    """What the model was trained for; checked when it is loaded for a task."""

    obs_dim: int
    act_dim: int
    env_id: str | None = None
    layout: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, ds) -> TaskInfo:
        """The task of a dataset (an :class:`~morec.data.OfflineDataset`): its sizes, environment and layout."""
        return cls(ds.obs_dim, ds.act_dim, ds.metadata.get("env_id"), ds.metadata.get("layout"))


class EnsembleDynamics(nn.Module):
    """``predict(obs [B, O], act [B, A]) -> (mean, logvar)``, each ``[E, B, O + 1]``: next
    observation (``obs + predicted delta``) then reward, per member.

    The input standardiser (``input_mean``, ``input_std`` ``[O + A]``) and the elite indices are
    buffers, so they live on the model's device and are saved with it.
    """

    input_mean: torch.Tensor  # buffers, registered in __init__
    input_std: torch.Tensor
    elites: torch.Tensor

    def __init__(
        self, task: TaskInfo, config: EnsembleConfig | None = None, seed: int = 0, device: str | torch.device = "cpu"
    ):
        super().__init__()
        self.config = cfg = config or EnsembleConfig()
        self.task = task
        in_dim, self.out_dim = task.obs_dim + task.act_dim, task.obs_dim + 1
        gen = torch.Generator().manual_seed(seed)
        sizes = (in_dim, *cfg.hidden_sizes)
        self.hidden = nn.ModuleList(
            EnsembleLinear(cfg.num_members, i, o, wd, gen) for i, o, wd in zip(sizes[:-1], sizes[1:], cfg.weight_decays)
        )
        self.output = EnsembleLinear(cfg.num_members, sizes[-1], 2 * self.out_dim, cfg.weight_decays[-1], gen)
        self.activation = ACTIVATIONS[cfg.activation]
        self.max_logvar = nn.Parameter(torch.full((self.out_dim,), cfg.init_max_logvar))
        self.min_logvar = nn.Parameter(torch.full((self.out_dim,), cfg.init_min_logvar))
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_std", torch.ones(in_dim))
        self.register_buffer("elites", torch.arange(cfg.num_elites))
        self.to(device)

    @property
    def device(self) -> torch.device:
        return self.input_mean.device

    @property
    def num_members(self) -> int:
        return self.config.num_members

    # ------------------------------------------------------------------ forward
    def forward_normalised(
        self, x: torch.Tensor, members: torch.Tensor | None = None, block_rows: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised input ``[B, O + A]`` or ``[E, B, O + A]`` -> raw ``(delta-and-reward mean,
        clamped logvar)``, each ``[E, B, O + 1]``; with ``members`` (indices), only those members
        run and ``E = len(members)``. A shared ``[B, O + A]`` goes through the layers ``block_rows``
        rows at a time; by default ``CPU_BLOCK_ROWS`` (:mod:`morec.row_blocks`: the same numbers,
        1.26x as fast at 50,000 rows) for inference on the CPU, and the whole batch on a GPU or
        under autograd (training's products and gradients stay as they were)."""
        layers = [layer.selected(members) for layer in (*self.hidden, self.output)]
        if block_rows is None:
            inference_on_cpu = x.device.type == "cpu" and not torch.is_grad_enabled()
            block_rows = CPU_BLOCK_ROWS if inference_on_cpu else max(x.shape[-2], 1)
        blocks = row_blocks(len(x), block_rows) if x.dim() == 2 else []
        if len(blocks) > 1:
            out = torch.cat([self._run(x[rows], layers) for rows in blocks], dim=1)
        else:
            out = self._run(x, layers)
        mean, logvar = out.chunk(2, dim=-1)
        return mean, soft_clamp(logvar, self.min_logvar, self.max_logvar)

    def _run(self, x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The network on ``x`` with the given ``(weight, bias)`` per layer -> ``[E, B, 2 (O + 1)]``."""
        for weight, bias in layers[:-1]:
            x = self.activation(ensemble_linear(x, weight, bias))
        return ensemble_linear(x, *layers[-1])

    def normalise(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return (torch.cat([obs, act], dim=-1) - self.input_mean) / self.input_std

    def predict(
        self, obs: torch.Tensor, act: torch.Tensor, members: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, O]``, ``act [B, A]`` -> ``(mean, logvar)`` each ``[E, B, O + 1]``, where
        ``mean[..., :O]`` is the predicted next observation and ``mean[..., O]`` the reward. With
        ``members`` (indices, e.g. ``self.elites``) only those members run: ``E = len(members)``."""
        delta, logvar = self.forward_normalised(self.normalise(obs, act), members)
        mean = torch.cat([delta[..., :-1] + obs, delta[..., -1:]], dim=-1)
        return mean, logvar

    def sample(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        num_samples: int = 1,
        elites_only: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Gaussian samples ``[S, M, B, O + 1]`` (``M`` = elites or all members) of next
        observation and reward."""
        mean, logvar = self.predict(obs, act, self.elites if elites_only else None)
        noise = torch.randn((num_samples, *mean.shape), device=mean.device, dtype=mean.dtype, generator=generator)
        return mean + noise * (0.5 * logvar).exp()

    # ------------------------------------------------------------------ losses
    def l2_penalty(self) -> torch.Tensor:
        return sum(layer.l2_penalty() for layer in (*self.hidden, self.output))

    def logvar_bound_penalty(self) -> torch.Tensor:
        return self.config.logvar_bound_coef * (self.max_logvar.sum() - self.min_logvar.sum())

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``dynamics.pt`` (weights, standardiser, elites, config, task) atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "config": asdict(self.config),
            "task": asdict(self.task),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        atomic_torch_save(payload, directory / CHECKPOINT_FILE)
        (directory / "config.json").write_text(json.dumps(payload["config"] | {"task": payload["task"]}, indent=2))
        return directory / CHECKPOINT_FILE

    @classmethod
    def load(
        cls, directory: str | Path, device: str | torch.device = "cpu", expect: TaskInfo | None = None
    ) -> EnsembleDynamics:
        """Load a saved ensemble. With ``expect``, a model trained for other observation/action
        sizes, environment or layout is refused with a clear error."""
        path = Path(directory) / CHECKPOINT_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no trained dynamics at {path}; train one first (`morec train-dynamics`, or fit_ensemble from Python)"
            )
        payload = torch.load(path, map_location="cpu", weights_only=False)
        task = TaskInfo(**payload["task"])
        if expect is not None:
            for name in ("obs_dim", "act_dim", "env_id", "layout"):
                want, have = getattr(expect, name), getattr(task, name)
                if want is not None and have is not None and want != have:
                    raise ValueError(
                        f"dynamics at {path} were trained with {name}={have!r} but this task has {name}={want!r}; "
                        "train dynamics for this task or point to the right checkpoint"
                    )
        model = cls(task, EnsembleConfig(**payload["config"]), device="cpu")
        model.load_state_dict(payload["state_dict"])
        return model.to(device).eval()
