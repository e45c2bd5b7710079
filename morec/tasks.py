"""The MuJoCo locomotion tasks morec knows: robots, names, observation layouts and reference
scores. This is the one place that knows them: :mod:`morec.dynamics` (termination, oracle), the
datasets, scores, credit assignment, LLM prompts and the training configs all read them from here.
It imports neither torch nor gymnasium at import time.

Two observation layouts exist for the same robots:

- ``"d4rl"``: gymnasium's default observation, x position excluded (D4RL, Minari, `morec collect`):
  ``[qpos[1:], qvel]``;
- ``"neorl"``: x position included as the first entry (NeoRL; gymnasium with
  ``exclude_current_positions_from_observation=False``): ``[qpos, qvel]``.

Termination functions, the MuJoCo oracle and evaluation read the layout from the dataset's
metadata and pick the matching variant; :func:`make_gym_env` builds the gymnasium env of a layout.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gymnasium as gym

LAYOUTS = ("d4rl", "neorl")


@dataclass(frozen=True)
class Domain:
    """One robot. ``obs_dim`` is for the d4rl layout; the neorl layout adds one (x position)."""

    name: str  # "hopper"
    gym_name: str  # "Hopper"
    obs_dim: int
    act_dim: int
    action_low: float
    action_high: float
    # D4RL reference returns (d4rl/infos.py; all v0/v1/v2 locomotion levels share them).
    d4rl_ref_min: float
    d4rl_ref_max: float
    # NeoRL has no official normaliser. These random/expert returns come from a third-party
    # helper widely copied between offline RL code bases; scores built on them are
    # reported beside raw returns and flagged unofficial.
    neorl_ref_min: float
    neorl_ref_max: float
    joints: tuple[str, ...]  # the actuated joints in qpos order (one action entry each)
    clips_velocities: bool  # gymnasium v4's observation clips qvel to [-10, 10]

    def __post_init__(self) -> None:  # d4rl layout: qpos[1:] = (z, angle, joints), qvel = (x, z, angle, joints)
        if (self.obs_dim, self.act_dim) != (5 + 2 * len(self.joints), len(self.joints)):
            raise ValueError(f"{self.name}: obs_dim/act_dim do not match {len(self.joints)} joints")

    def obs_dim_for(self, layout: str) -> int:
        check_layout(layout)
        return self.obs_dim + (1 if layout == "neorl" else 0)

    @property
    def x_velocity_index(self) -> int:
        """Index of the forward (x) velocity in the d4rl layout: the first entry of ``qvel``."""
        return 2 + len(self.joints)

    def gym_id(self, version: str = "v4") -> str:
        return f"{self.gym_name}-{version}"


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            "halfcheetah",
            "HalfCheetah",
            17,
            6,
            -1.0,
            1.0,
            -280.178953,
            12135.0,
            -298.0,
            12284.0,
            ("back thigh", "back shin", "back foot", "front thigh", "front shin", "front foot"),
            False,
        ),
        Domain(
            "hopper",
            "Hopper",
            11,
            3,
            -1.0,
            1.0,
            -20.272305,
            3234.3,
            5.0,
            3294.0,
            ("thigh", "leg (knee)", "foot (ankle)"),
            True,
        ),
        Domain(
            "walker2d",
            "Walker2d",
            17,
            6,
            -1.0,
            1.0,
            1.629008,
            4592.3,
            1.0,
            5143.0,
            (
                "right thigh",
                "right leg (knee)",
                "right foot (ankle)",
                "left thigh",
                "left leg (knee)",
                "left foot (ankle)",
            ),
            True,
        ),
    )
}

D4RL_LEVELS = ("random", "medium", "medium-replay", "medium-expert", "expert")
NEORL_LEVELS = ("low", "medium", "high", "expert")
NEORL_SIZES = (100, 1000, 10000)

_D4RL_NAME = re.compile(r"^(?P<domain>[a-z0-9]+)-(?P<level>[a-z-]+)-v2$")
_NEORL_NAME = re.compile(r"^(?P<gym>[A-Za-z0-9]+)-v3-(?P<level>[a-z]+)(?:-(?P<size>\d+))?$")
_GYM_ID = re.compile(r"^(?P<gym>[A-Za-z0-9]+)-v(?P<version>\d+)$")
# NeoRL's file names: Hopper-v3-low-100-train-noise.npz (and -val-)
_NEORL_FILE = re.compile(r"^(?P<task>[A-Za-z0-9]+-v3-[a-z]+-\d+)-(?:train|val)-noise$")
# Any name shaped like a domain ("hopper"), a gymnasium id ("Hopper-v4"), a D4RL name
# ("hopper-medium-replay-v2") or a NeoRL name ("Hopper-v3-low-100"), levels and versions unchecked;
# the domain is the first token.
_DOMAIN_FIRST = re.compile(r"^(?P<domain>[A-Za-z0-9]+)(?:-v\d+|-[a-z]+(?:-[a-z]+)*-v\d+|-v3-[a-z]+(?:-\d+)?)?$")


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown observation layout {layout!r}: use one of {LAYOUTS}")
    return layout


def domain_of(name: str) -> str | None:
    """The robot a task-shaped name starts with (``"Hopper-v5"``, ``"hopper-medium-v0"``,
    ``"Walker2d-v3-high"`` and ``"hopper"`` all give its domain), or ``None``. Unlike
    :func:`get_task` it does not check levels or versions: a termination function only needs the robot."""
    match = _DOMAIN_FIRST.match(name)
    domain = match["domain"].lower() if match else None
    return domain if domain in DOMAINS else None


def _domain_by_gym_name(gym_name: str) -> Domain | None:
    return next((d for d in DOMAINS.values() if d.gym_name.lower() == gym_name.lower()), None)


@dataclass(frozen=True)
class TaskSpec:
    """A named task resolved to its robot, benchmark and observation layout."""

    name: str  # as given, e.g. "hopper-medium-v2", "Hopper-v3-low-100", "Hopper-v4"
    domain: Domain
    benchmark: str  # "d4rl", "neorl" or "gym"
    layout: str
    level: str | None = None
    num_trajectories: int | None = None  # NeoRL training size

    @property
    def obs_dim(self) -> int:
        return self.domain.obs_dim_for(self.layout)

    @property
    def act_dim(self) -> int:
        return self.domain.act_dim

    @property
    def eval_env_id(self) -> str:
        """The gymnasium environment to evaluate on. D4RL was recorded on gym v3, whose models
        gymnasium's v4 keeps (v5 changed walker2d friction), so D4RL and NeoRL evaluate on v4."""
        if self.benchmark == "gym" and _GYM_ID.match(self.name):
            return self.name
        return self.domain.gym_id("v4")


def known_task_names() -> list[str]:
    """Every benchmark dataset name this module resolves (D4RL v2 and NeoRL v3)."""
    names = [f"{d}-{lvl}-v2" for d in DOMAINS for lvl in D4RL_LEVELS]
    names += [f"{d.gym_name}-v3-{lvl}-{n}" for d in DOMAINS.values() for lvl in NEORL_LEVELS for n in NEORL_SIZES]
    return names


def get_task(name: str) -> TaskSpec:
    """Resolve a D4RL name (``hopper-medium-v2``), a NeoRL name (``Hopper-v3-low-100``), a bare
    domain (``hopper``) or a gymnasium id (``Hopper-v4``) to a :class:`TaskSpec`."""
    raw = name.split(":", 1)[1] if ":" in name else name
    if raw.lower() in DOMAINS:
        return TaskSpec(raw, DOMAINS[raw.lower()], "gym", "d4rl")
    m = _D4RL_NAME.match(raw)
    if m and m["domain"] in DOMAINS and m["level"] in D4RL_LEVELS:
        return TaskSpec(raw, DOMAINS[m["domain"]], "d4rl", "d4rl", level=m["level"])
    m = _NEORL_NAME.match(raw)
    if m and _domain_by_gym_name(m["gym"]) and m["level"] in NEORL_LEVELS:
        size = int(m["size"]) if m["size"] else None
        return TaskSpec(raw, _domain_by_gym_name(m["gym"]), "neorl", "neorl", level=m["level"], num_trajectories=size)
    m = _GYM_ID.match(raw)
    if m and _domain_by_gym_name(m["gym"]):
        return TaskSpec(raw, _domain_by_gym_name(m["gym"]), "gym", "d4rl")
    raise KeyError(
        f"unknown task {name!r}: use a D4RL name like 'hopper-medium-v2' "
        f"(domains {sorted(DOMAINS)}, levels {list(D4RL_LEVELS)}), a NeoRL name like "
        f"'Hopper-v3-low-100' (levels {list(NEORL_LEVELS)}), or a gymnasium id like 'Hopper-v4'"
    )


def task_from_file_name(path: str | PurePath) -> TaskSpec | None:
    """The task an official dataset file name names, or ``None``: D4RL's
    ``hopper_medium_replay-v2.hdf5`` (also spelled ``hopper-medium-replay-v2.hdf5``) and NeoRL's
    ``Hopper-v3-low-100-train-noise.npz``. A renamed or home-made file names nothing."""
    stem = PurePath(path).name
    for suffix in (".hdf5", ".h5", ".npz"):
        stem = stem.removesuffix(suffix)
    m = _NEORL_FILE.match(stem)
    candidates = [m["task"]] if m else [stem.replace("_", "-")]
    for name in candidates:
        try:
            task = get_task(name)
        except KeyError:
            continue
        if task.benchmark in ("d4rl", "neorl"):
            return task
    return None


def make_gym_env(env_id: str, layout: str = "d4rl") -> gym.Env:
    """``gym.make(env_id)`` with the observation of ``layout`` (the x position excluded for
    ``"d4rl"``, included first for ``"neorl"``). The v4 MuJoCo envs are deprecated in gymnasium but
    are the D4RL-matching version, so their "is out of date" warning is silenced, and so is
    MuJoCo's compiler warning about their XML's ``settotalmass`` (printed once per env made, it
    buried training logs); any other MuJoCo warning still reaches Python's ``warnings``."""
    import gymnasium as gym
    import mujoco

    check_layout(layout)
    previous_handler = mujoco.get_mju_user_warning()

    def forward_other_warnings(message: str) -> None:
        if "settotalmass" in message:
            return
        if previous_handler is not None:
            previous_handler(message)
        else:
            warnings.warn(f"MuJoCo: {message}", stacklevel=2)

    mujoco.set_mju_user_warning(forward_other_warnings)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is out of date.*")
            return gym.make(env_id, exclude_current_positions_from_observation=(layout == "d4rl"))
    finally:
        mujoco.set_mju_user_warning(previous_handler)
