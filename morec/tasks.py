"""The MuJoCo locomotion tasks morec knows, re-exported from :mod:`dynamics.tasks`, the one module
that owns robots, task names, observation layouts and reference scores (it sits below every
package that uses them)."""

from dynamics.tasks import (
    D4RL_LEVELS,
    DOMAINS,
    LAYOUTS,
    NEORL_LEVELS,
    NEORL_SIZES,
    Domain,
    TaskSpec,
    check_layout,
    domain_of,
    get_task,
    known_task_names,
    make_gym_env,
    task_from_file_name,
)

__all__ = ["D4RL_LEVELS", "DOMAINS", "LAYOUTS", "NEORL_LEVELS", "NEORL_SIZES", "Domain", "TaskSpec", "check_layout",
           "domain_of", "get_task", "known_task_names", "make_gym_env", "task_from_file_name"]
