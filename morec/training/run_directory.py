"""One training run's folder.

:class:`RunDirectory` holds ``config.yaml`` (resolved), ``checkpoint.pt`` (written
atomically after every epoch), ``tb/`` (TensorBoard, every scalar against the gradient step),
``summary.json`` (scores, rollouts, wall time, and ``code_versions``: the commit and processor each
stretch of epochs ran on, as :mod:`morec.provenance` names them) and ``policy.pt`` (the final
policy's mode as TorchScript, observations ``[B, O]`` -> actions ``[B, A]``, which ``morec
eval-model --policy torchscript`` reads). It is
locked while open, so a second process (a suite re-run while a killed one's worker still
lingers) fails at once instead of interleaving checkpoints.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from morec.io import atomic_write, plain
from morec.locking import LockBusy, acquire
from morec.training.config import ConfigError, TrainConfig, config_differences, config_from_dict

CHECKPOINT_FILE, CONFIG_FILE, SUMMARY_FILE = "checkpoint.pt", "config.yaml", "summary.json"  # in a run's folder


class RunDirectory:
    """One run's folder, locked from :meth:`open` until :meth:`close`."""

    @staticmethod
    def default_root(cfg: TrainConfig) -> Path:
        """Where a config's runs go unless told: ``runs/<task>-<algorithm>[-morec]``."""
        return Path("runs") / cfg.name

    @staticmethod
    def of_seed(root: str | Path, seed: int) -> Path:
        """The folder of seed ``seed``'s run under ``root``: ``<root>/seed<seed>``."""
        return Path(root) / f"seed{seed}"

    def __init__(self, path: str | Path, lock):
        self.path = Path(path)
        self.checkpoint, self.config = self.path / CHECKPOINT_FILE, self.path / CONFIG_FILE
        self.tb, self.summary, self.policy = self.path / "tb", self.path / SUMMARY_FILE, self.path / "policy.pt"
        self._lock = lock

    @classmethod
    def open(cls, cfg: TrainConfig, path: str | Path, resume: bool = False) -> RunDirectory:
        """Lock ``path`` and check it against ``resume``: a resumed run needs a checkpoint written with
        the same config, a fresh one no checkpoint. Writes the resolved ``config.yaml``."""
        path = Path(path)
        try:
            lock = acquire(path / ".lock", blocking=False)
        except LockBusy:
            raise ConfigError(f"{path} is in use by another running process; wait for it or stop it") from None
        run = cls(path, lock)
        with run.released_on_error():
            run._check(cfg, resume)
        return run

    def _check(self, cfg: TrainConfig, resume: bool) -> None:
        resolved = cfg.to_dict()
        if resume:
            if not self.checkpoint.exists():
                raise ConfigError(f"--resume: no checkpoint at {self.checkpoint}; start the run without --resume")
            saved = config_from_dict(yaml.safe_load(self.config.read_text())).to_dict()
            if saved != resolved:
                diff = list(config_differences(saved, resolved))
                raise ConfigError(f"--resume: {self.checkpoint} was written with another config (differs in {diff})")
        elif self.checkpoint.exists():
            raise ConfigError(
                f"{self.path} already holds a run; pass --resume to continue it or choose another --run-dir"
            )
        else:  # an attempt killed before its first checkpoint: its curves are about to be written again
            shutil.rmtree(self.tb, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.config, lambda tmp: tmp.write_text(yaml.safe_dump(plain(resolved), sort_keys=False)))

    @contextmanager
    def released_on_error(self) -> Iterator[RunDirectory]:
        """Unlock the run directory if the block raises (a run that failed to start)."""
        try:
            yield self
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._lock.close()
