"""One gradient step captured as a CUDA graph and replayed: :class:`CapturedUpdate`.

A MOPO or MOBILE step is a few hundred small kernels (batch 256, 256x256 networks); launched one by
one from Python, a GPU spends most of the step waiting for the next launch. Captured once, the
whole step (the batch gather from the device-resident data, MOBILE's penalty, the critic, actor
and entropy-weight updates, the target update) is one graph launch.

What stays outside the graph: drawing the batch's row indices (so the sampler's generator and its
stream of indices are the eager run's, and the model buffer may grow between steps), the
learning-rate schedulers (they write the learning rate into a device tensor the graph reads) and
reading the scalars (``ModelBasedStats`` holds the graph's output tensors; the training loop reads them
every ``train.log_every`` steps, so no step waits for the device).

The capture runs ``WARMUP_STEPS`` eager steps on a side stream first (CUDA's rule for capturing
autograd and optimizers), then records one step, then puts back everything those steps changed:
parameters, optimizer moments and step counts, and the random-number states. So capturing consumes
nothing, and a resumed run, which captures again after loading its checkpoint, replays the same
steps as the uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import torch

from morec.errors import UserError

if TYPE_CHECKING:
    from morec.learners.sac_step import ModelBasedStats


class CapturedUpdate:
    """``replay(sampler, real_rows, model_rows)``: one gradient step of ``algo`` (a
    :class:`~morec.learners.sac.ModelBasedSAC` or a :class:`~morec.learners.stacked.StackedSAC`) on the batch
    at these rows, as a graph replay (CUDA only). Recaptures when the sampler or the rows' shapes
    (the batch's split into real and model rows) change."""

    WARMUP_STEPS = 3
    DEVICE_TYPE = "cuda"  # the device the capture runs on (the CPU tests' stand-in says "cpu")

    def __init__(self, algo):
        device = next(algo.parameters()).device
        if device.type != self.DEVICE_TYPE:
            raise ValueError(f"a CUDA graph needs the learner on a CUDA device, not {device}")
        self.algo, self.device = algo, device
        self.real_rows: torch.Tensor | None = None  # the graph's inputs: the batch's row indices
        self.model_rows: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.signature: tuple | None = None  # (sampler, real rows' shape, model rows' shape) the graph was captured for
        self.stats: ModelBasedStats | None = None  # the graph's outputs, rewritten by each replay

    def replay(self, sampler, real_rows: torch.Tensor, model_rows: torch.Tensor | None) -> ModelBasedStats:
        signature = (id(sampler), tuple(real_rows.shape), None if model_rows is None else tuple(model_rows.shape))
        if signature != self.signature:
            self._capture(sampler, real_rows, model_rows)
            self.signature = signature
        assert (
            self.real_rows is not None and self.graph is not None and self.stats is not None
        )  # captured just now, or before
        self.real_rows.copy_(real_rows)
        if model_rows is not None:
            assert self.model_rows is not None  # the signature includes the model rows' shape
            self.model_rows.copy_(model_rows)
        self.graph.replay()
        return dataclasses.replace(self.stats)

    # ------------------------------------------------------------------ capture
    def _capture(self, sampler, real_rows: torch.Tensor, model_rows: torch.Tensor | None) -> None:
        self.real_rows, self.model_rows = real_rows.clone(), None if model_rows is None else model_rows.clone()
        if self.graph is not None and self.device.type == "cuda":  # its last replay may still run on the device
            torch.cuda.current_stream(self.device).synchronize()
        self.graph = None  # frees the old graph's memory pool before the new one takes its own
        self._make_optimizers_capturable()
        saved = self._snapshot()
        step = lambda: self.algo.update_with_batch(sampler.gather(self.real_rows, self.model_rows))  # noqa: E731
        try:
            self._warm_up(step)
            graph, self.stats = self._record(step)
        finally:  # a failed capture too leaves the learner as it found it
            self._restore(saved)
        self.graph = graph

    def _warm_up(self, step) -> None:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP_STEPS):
                step()
        torch.cuda.current_stream(self.device).wait_stream(side)

    def _record(self, step) -> tuple[torch.cuda.CUDAGraph, ModelBasedStats]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            stats = step()
        return graph, stats

    def _make_optimizers_capturable(self) -> None:
        """Adam keeps its step count on the device and reads its learning rate from a device tensor
        (a graph would freeze a Python float); the schedulers then write into that tensor."""
        for torch_optim in self.algo.torch_optimizers:
            for group in torch_optim.param_groups:
                group["capturable"] = True
                if not isinstance(group["lr"], torch.Tensor):
                    group["lr"] = torch.tensor(float(group["lr"]), device=self.device)
                for p in group["params"]:
                    state = torch_optim.state.get(p)
                    if state and "step" in state:
                        state["step"] = state["step"].to(device=self.device, dtype=torch.float32)

    def _snapshot(self) -> dict:
        optim_states = [
            {p: {k: v.clone() for k, v in s.items()} for p, s in o.state.items()} for o in self.algo.torch_optimizers
        ]
        return {
            "tensors": [t.detach().clone() for t in self.algo.state_dict().values()],
            "optimizers": optim_states,
            "rng": self._rng_state(),
        }

    def _restore(self, saved: dict) -> None:
        """Undo the warm-up steps in place (the graph holds these tensors' addresses)."""
        with torch.no_grad():
            for tensor, value in zip(self.algo.state_dict().values(), saved["tensors"], strict=True):
                tensor.copy_(value)
            for optim, before in zip(self.algo.torch_optimizers, saved["optimizers"], strict=True):
                for p, state in optim.state.items():
                    for key, value in state.items():  # a moment that did not exist before: Adam's fresh zeros
                        value.copy_(before[p][key]) if p in before else value.zero_()
        self._set_rng_state(saved["rng"])

    def _rng_state(self) -> torch.Tensor:
        return torch.cuda.get_rng_state(self.device)

    def _set_rng_state(self, state: torch.Tensor) -> None:
        torch.cuda.set_rng_state(state, self.device)


def replay_or_none(
    learner, sampler, real_rows: torch.Tensor, model_rows: torch.Tensor | None
) -> ModelBasedStats | None:
    """``learner.captured_update``'s replay of the step at these rows. If the step cannot be
    captured: with ``learner._eager_on_capture_failure`` (``train.compile=auto``) a warning, the
    learner eager from then on, and ``None`` (the caller steps eagerly); otherwise a clear error."""
    try:
        return learner.captured_update.replay(sampler, real_rows, model_rows)
    except RuntimeError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if not learner._eager_on_capture_failure:
            raise UserError(
                f"train.compile=on: the gradient step could not be captured as a CUDA graph ({reason}); "
                "train.compile=auto runs it eagerly instead"
            ) from error
        warnings.warn(f"the update could not be captured as a CUDA graph, so it runs eagerly: {reason}", stacklevel=4)
        learner.captured_update = None
        return None
