"""Evaluation in a separate process, so that the next epoch trains while the last one's policy
is evaluated (``train.evaluate_in_background``).

The process holds its own copy of the actor on the CPU and runs :class:`morec.training.evaluation.Evaluator`
on the weights it is sent, one evaluation at a time. An evaluation depends only on the weights and
its seed, so its result is the same whenever it finishes and equals the in-process evaluation of
the same weights on the CPU.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import traceback
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.actor import build_actor
from morec.errors import UserError
from morec.training.evaluation import Evaluator


@dataclass(frozen=True)
class ActorSpec:
    """What the process needs to rebuild the learner's actor and evaluate it."""

    task: str
    env_id: str
    layout: str
    obs_dim: int
    act_dim: int
    hidden_sizes: tuple[int, ...]


class EvaluationFailed(UserError, RuntimeError):
    """The evaluation process raised or died; the message carries its error, the cause its traceback."""


class ProcessTraceback(Exception):
    """The evaluation process's traceback, as text."""


def _serve(spec: ActorSpec, connection: _PipePair) -> None:
    """The process: receive ``(actor_state, episodes, seed)``, send back ``("ok", scores)`` or
    ``("error", traceback)``; return when the training loop closes the connection or goes away."""
    torch.set_num_threads(1)
    evaluator = Evaluator(spec.task, spec.env_id, spec.layout)
    policy = SACPolicy(
        actor=build_actor(spec.obs_dim, spec.act_dim, spec.hidden_sizes), action_space=evaluator.action_space
    )
    while True:
        try:
            actor_state, episodes, seed = connection.recv()
        except (EOFError, OSError):
            return
        try:
            policy.actor.load_state_dict(actor_state)
            connection.send(("ok", evaluator(policy, episodes, seed)))
        except Exception:  # noqa: BLE001 - the training loop raises it with the process's traceback
            connection.send(("error", traceback.format_exc()))


class BackgroundEvaluator:
    """:class:`~morec.training.evaluation.Evaluator`'s ``submit`` / ``wait`` / ``close`` in another process,
    at most one evaluation in flight: :meth:`submit` sends the actor's weights (copied to the CPU at
    once, so training may go on changing them) with a ``tag`` the caller gets back from :meth:`wait`.
    The process starts at the first :meth:`submit` and stops at :meth:`close`."""

    in_background = True

    def __init__(self, spec: ActorSpec):
        self.spec = spec
        self.pending: dict[str, Any] | None = None  # the tag of the evaluation in flight
        self._process: subprocess.Popen | None = None
        self._connection: _PipePair | None = None

    def submit(self, policy: SACPolicy, episodes: int, seed: int, tag: dict[str, Any]) -> None:
        if self.pending is not None:
            raise RuntimeError(f"an evaluation ({self.pending}) is still in flight: wait() for it first")
        if self._process is None:
            self._start()
        state = {key: value.detach().to("cpu", copy=True) for key, value in policy.actor.state_dict().items()}
        try:
            self._connection.send((state, episodes, seed))
        except OSError:  # a broken pipe: the process is gone
            raise EvaluationFailed(
                f"evaluating the policy of epoch {tag.get('epoch')} in the background failed: "
                f"the evaluation process ended (exit code {self._process.wait()})"
            ) from None
        self.pending = tag

    def _start(self) -> None:
        """A fresh interpreter running this module (not a fork, which would copy the training loop's threads
        and CUDA state, nor multiprocessing's spawn, which imports the caller's ``__main__`` again),
        talking over a pipe pair it inherits."""
        child_reads, parent_writes = os.pipe()  # (read end, write end)
        parent_reads, child_writes = os.pipe()
        # the folder holding morec/: importable however the training process found it
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(child_reads), str(child_writes), repr(asdict(self.spec))],
            pass_fds=(child_reads, child_writes),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(child_reads)
        os.close(child_writes)
        self._connection = _PipePair(read_fd=parent_reads, write_fd=parent_writes)

    def wait(self) -> tuple[dict[str, Any], dict[str, float]]:
        """``(tag, scores)`` of the evaluation in flight, once it has finished."""
        if self.pending is None:
            raise RuntimeError("no evaluation is in flight")
        try:
            status, payload = self._connection.recv()
        except (EOFError, OSError):
            status, payload = "error", f"the evaluation process ended (exit code {self._process.wait()})"
        tag, self.pending = self.pending, None
        if status != "ok":
            error = payload.strip().splitlines()[-1]
            raise EvaluationFailed(
                f"evaluating the policy of epoch {tag.get('epoch')} in the background failed: {error}"
            ) from ProcessTraceback(payload)
        return tag, payload

    def close(self) -> None:
        """Stop the process (an evaluation in flight is dropped)."""
        if self._process is None:
            return
        self._connection.close()  # the process reads end-of-file and returns
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process, self._connection, self.pending = None, None, None


class _PipePair:
    """``send`` / ``recv`` of pickled objects over two one-way pipes (a ``Connection`` per end)."""

    def __init__(self, read_fd: int, write_fd: int):
        self._read, self._write = Connection(read_fd, writable=False), Connection(write_fd, readable=False)

    def send(self, obj: Any) -> None:
        self._write.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def recv(self) -> Any:
        return pickle.loads(self._read.recv_bytes())

    def close(self) -> None:
        self._write.close()
        self._read.close()


if (
    __name__ == "__main__"
):  # the evaluation process: python -m morec.training.background_evaluation READ_FD WRITE_FD SPEC
    import ast

    _serve(ActorSpec(**ast.literal_eval(sys.argv[3])), _PipePair(read_fd=int(sys.argv[1]), write_fd=int(sys.argv[2])))
