"""Maximum-likelihood training of an :class:`EnsembleDynamics` with holdout early stopping.

Per mini-batch (``E`` members, ``B`` rows, ``D = O + 1`` outputs, ``l`` = clamped logvar)::

    L = sum_e [ mean_bd (mu - y)^2 * exp(-l) + mean_bd l ]  +  sum_layers wd * 0.5 * ||W||^2
        + logvar_bound_coef * (sum max_logvar - sum min_logvar)

Holdout metric per member: MSE of the mean. A member improves when its holdout MSE drops by more
than ``improvement_threshold`` (relative); its weights at that point are kept. Training stops
after ``max_epochs_since_update`` epochs without any member improving (or at ``max_epochs``, or
once ``max_seconds`` of training have passed);
every member is restored to its best weights and the elites are the members with the lowest
holdout MSE.

With ``checkpoint`` (a file path), the whole training state is written there atomically after
every epoch and read back on the next call, so a killed training resumes where it stopped and
ends as the uninterrupted one would; the file is removed when training ends.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from morec.dynamics.ensemble import EnsembleDynamics
from morec.errors import UserError
from morec.io import atomic_torch_save
from morec.progress import progress_bar


@dataclass
class FitReport:
    epochs: int
    holdout_mse: list[float]  # per member, at its best epoch
    elites: list[int]
    elite_holdout_mse: float
    train_nll: float  # last epoch's mean training loss (without regularisers)
    seconds: float
    train_size: int
    holdout_size: int
    stopped_by: str = "patience"  # "patience" (early stopping), "max_epochs" or "max_seconds"


def training_arrays(dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[N, O + A]`` = (s, a) and targets ``[N, O + 1]`` = (s' - s, r) as tensors."""
    obs = np.asarray(dataset.observations, np.float32)
    x = np.concatenate([obs, np.asarray(dataset.actions, np.float32)], axis=1)
    y = np.concatenate(
        [
            np.asarray(dataset.next_observations, np.float32) - obs,
            np.asarray(dataset.rewards, np.float32).reshape(-1, 1),
        ],
        axis=1,
    )
    return torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)


BUDGET_KEYS = ("max_epochs", "max_seconds")  # may change when a fit resumes


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """A digest of the training arrays, so a checkpoint of other data of the same size is refused."""
    digest = hashlib.sha1()
    for array in (x, y):
        digest.update(array.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _same_fit(saved: dict, current: dict) -> bool:
    """Whether a checkpoint's signature is this fit's, budget aside (older checkpoints hold no ``data``)."""

    def without_budget(signature: dict) -> dict:
        config = {k: v for k, v in (signature.get("config") or {}).items() if k not in BUDGET_KEYS}
        return {**signature, "config": config}

    saved, current = without_budget(saved), without_budget(current)
    if "data" not in saved:
        current.pop("data", None)
    return saved == current


def _member_snapshot(model: EnsembleDynamics) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _nll(model: EnsembleDynamics, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gaussian NLL summed over members (``x [E, B, in]``, ``y [E, B, D]``)."""
    mean, logvar = model.forward_normalised(x)
    per_member = ((mean - y).pow(2) * torch.exp(-logvar)).mean(dim=(1, 2)) + logvar.mean(dim=(1, 2))
    return per_member.sum()


@torch.no_grad()
def holdout_mse(model: EnsembleDynamics, x: torch.Tensor, y: torch.Tensor, chunk: int = 65_536) -> torch.Tensor:
    """``[E]`` mean squared error of each member's mean on standardised inputs ``x [N, in]``."""
    total = torch.zeros(model.num_members, device=x.device)
    for start in range(0, len(x), chunk):
        mean, _ = model.forward_normalised(x[start : start + chunk])
        total += (mean - y[start : start + chunk]).pow(2).mean(dim=2).sum(dim=1)
    return total / len(x)


def fit_ensemble(
    model: EnsembleDynamics,
    dataset,
    *,
    seed: int = 0,
    log_dir: str | None = None,
    writer: SummaryWriter | None = None,
    show_progress: bool = True,
    checkpoint: str | Path | None = None,
) -> FitReport:
    """Fit ``model`` on ``dataset`` (any object with ``observations, actions, rewards,
    next_observations`` arrays). Scalars go to TensorBoard (``log_dir`` or ``writer``); with
    ``checkpoint``, training resumes from that file and writes it after every epoch (the caller
    deletes it once the fitted model is saved; a rerun before that repeats the last epoch exactly).
    A checkpoint of other data, seed or settings is refused; the budget (``max_epochs``,
    ``max_seconds``) may change between sessions."""
    cfg, device = model.config, model.device
    start_time = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(seed)
    x_all, y_all = training_arrays(dataset, device)
    n = len(x_all)
    n_hold = min(int(n * cfg.holdout_ratio), cfg.max_holdout)
    if n - n_hold < 2:
        raise ValueError(f"too few transitions to train dynamics ({n}); need at least a few batches")
    perm = torch.randperm(n, device=device, generator=gen)
    train_idx, hold_idx = perm[n_hold:], perm[:n_hold]
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    model.input_mean.copy_(x_train.mean(0))
    std = x_train.std(0, unbiased=False)
    model.input_std.copy_(torch.where(std < 1e-12, torch.ones_like(std), std))
    x_train = (x_train - model.input_mean) / model.input_std
    x_hold = (x_all[hold_idx] - model.input_mean) / model.input_std if n_hold else None
    y_hold = y_all[hold_idx]

    E, n_train = cfg.num_members, len(x_train)
    if cfg.bootstrap:
        member_rows = torch.randint(n_train, (E, n_train), device=device, generator=gen)
    else:
        member_rows = torch.arange(n_train, device=device).expand(E, n_train).clone()
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    own_writer = SummaryWriter(log_dir) if (writer is None and log_dir) else None
    writer = writer or own_writer

    best_mse = torch.full((E,), float("inf"), device=device)
    best_state = _member_snapshot(model)
    epochs_since_update, epoch, train_nll, seconds_before = 0, 0, float("nan"), 0.0
    signature = {"rows": n, "seed": seed, "config": asdict(cfg), "data": _fingerprint(x_all, y_all)}
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if not _same_fit(state["signature"], signature):
            raise UserError(
                f"{checkpoint} was written by a dynamics training with other data or settings; delete it to start over"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        best_state, best_mse, member_rows = state["best_state"], state["best_mse"], state["member_rows"]
        epochs_since_update, epoch, train_nll, seconds_before = (
            state[k] for k in ("since", "epoch", "train_nll", "seconds")
        )
        gen.set_state(state["generator"].cpu())  # a generator's state is a CPU tensor, whatever its device
    bar = progress_bar(show_progress, desc="dynamics", unit="epoch", total=cfg.max_epochs, initial=epoch, line_every=1)
    model.train()
    while True:
        order = torch.argsort(torch.rand(E, n_train, device=device, generator=gen), dim=1)
        member_rows = torch.gather(member_rows, 1, order)
        losses = []
        for start in range(0, n_train, cfg.batch_size):
            rows = member_rows[:, start : start + cfg.batch_size]  # [E, B]
            nll = _nll(model, x_train[rows], y_train[rows])
            loss = nll + model.l2_penalty() + model.logvar_bound_penalty()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(nll.detach())
        epoch += 1
        train_nll = float(torch.stack(losses).mean() / E)
        mse = holdout_mse(model, x_hold, y_hold) if x_hold is not None else torch.full((E,), train_nll, device=device)
        improved = (best_mse - mse) / best_mse > cfg.improvement_threshold
        improved |= torch.isinf(best_mse)
        if improved.any():
            members = improved.nonzero().flatten()
            state = model.state_dict()
            for key, value in state.items():
                if key.startswith(("hidden.", "output.")):  # per-member weights [E, ...]
                    best_state[key][members] = value.detach()[members]
                else:
                    best_state[key] = value.detach().clone()
            best_mse = torch.where(improved, mse, best_mse)
            epochs_since_update = 0
        else:
            epochs_since_update += 1
        elite_mse = float(best_mse.sort().values[: cfg.num_elites].mean())
        if writer is not None:
            writer.add_scalar("dynamics/train_nll", train_nll, epoch)
            writer.add_scalar("dynamics/holdout_mse_elites", elite_mse, epoch)
            for e in range(E):
                writer.add_scalar(f"dynamics/holdout_mse_member_{e}", float(mse[e]), epoch)
        # how far early stopping is: epochs since any member improved, out of the patience (set before
        # the update, which prints this epoch's line in a log file)
        bar.set_postfix(
            best_holdout_mse=f"{elite_mse:.4f}",
            since_best=f"{epochs_since_update}/{cfg.max_epochs_since_update}",
            train_nll=f"{train_nll:.3f}",
        )
        bar.update(1)
        seconds = seconds_before + time.perf_counter() - start_time
        stopped_by = stop_reason(cfg, epoch, epochs_since_update, seconds)
        if stopped_by is not None:
            break
        if checkpoint is not None:
            atomic_torch_save(
                {
                    "signature": signature,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "best_state": best_state,
                    "best_mse": best_mse,
                    "member_rows": member_rows,
                    "since": epochs_since_update,
                    "epoch": epoch,
                    "train_nll": train_nll,
                    "seconds": seconds,
                    "generator": gen.get_state(),
                },
                checkpoint,
            )
    bar.close()
    model.load_state_dict(best_state)
    elites = torch.argsort(best_mse)[: cfg.num_elites].sort().values
    model.elites.copy_(elites)
    model.eval()
    if writer is not None:
        writer.add_text("dynamics/elites", str(elites.tolist()), epoch)
        writer.flush()
    if own_writer is not None:
        own_writer.close()
    return FitReport(
        epochs=epoch,
        holdout_mse=best_mse.tolist(),
        elites=elites.tolist(),
        elite_holdout_mse=float(best_mse[elites].mean()),
        train_nll=train_nll,
        seconds=seconds_before + time.perf_counter() - start_time,
        train_size=n_train,
        holdout_size=n_hold,
        stopped_by=stopped_by,
    )


def stop_reason(cfg, epoch: int, epochs_since_update: int, seconds: float) -> str | None:
    """Why training stops after ``epoch`` (``None``: it goes on)."""
    if epochs_since_update >= cfg.max_epochs_since_update:
        return "patience"
    if cfg.max_epochs and epoch >= cfg.max_epochs:
        return "max_epochs"
    if cfg.max_seconds and seconds >= cfg.max_seconds:
        return "max_seconds"
    return None
