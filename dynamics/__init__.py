"""Ensemble dynamics models, termination functions, the MuJoCo oracle and the task registry
(imports neither `morec` nor `algos`).

Names load on first use, so torch-free modules (``dynamics.tasks``, ``dynamics.io``) can be
imported without torch, as the command line's argument parsing does."""

import importlib

_LAZY = {  # name -> submodule
    **dict.fromkeys(["EnsembleConfig", "EnsembleDynamics", "TaskInfo"], ".ensemble"),
    "MujocoOracle": ".oracle",
    **dict.fromkeys(["TerminationFn", "get_termination_fn", "resolve_termination_fn"], ".termination"),
    **dict.fromkeys(["FitReport", "fit_ensemble"], ".training"),
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EnsembleConfig",
    "EnsembleDynamics",
    "FitReport",
    "MujocoOracle",
    "TaskInfo",
    "TerminationFn",
    "fit_ensemble",
    "get_termination_fn",
    "resolve_termination_fn",
]
