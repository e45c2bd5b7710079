"""Ensemble dynamics models (:mod:`.ensemble`, settings in the torch-free :mod:`.config`), their
training (:mod:`.training`), termination functions and the MuJoCo oracle. Names load on first use."""

from morec.lazy import lazy_attributes

_LAZY = {  # name -> submodule
    "EnsembleConfig": ".config",
    **dict.fromkeys(["EnsembleDynamics", "TaskInfo"], ".ensemble"),
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
