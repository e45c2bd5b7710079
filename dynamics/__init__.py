"""Ensemble dynamics models, termination functions, the MuJoCo oracle and the task registry
(imports neither `morec` nor `algos`).

Names load on first use, so torch-free modules (``dynamics.tasks``, ``dynamics.io``) can be
imported without torch, as the command line's argument parsing does."""

from dynamics.lazy import lazy_attributes

_LAZY = {  # name -> submodule
    **dict.fromkeys(["EnsembleConfig", "EnsembleDynamics", "TaskInfo"], ".ensemble"),
    "MujocoOracle": ".oracle",
    **dict.fromkeys(["TerminationFn", "get_termination_fn", "resolve_termination_fn"], ".termination"),
    **dict.fromkeys(["FitReport", "fit_ensemble"], ".training"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


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
