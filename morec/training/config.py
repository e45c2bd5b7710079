"""`TrainConfig`: everything one `morec train` run needs, as nested dataclasses read from YAML.

Unknown keys, wrong types and unknown tasks are errors before anything runs. ``--set a.b=value``
overrides use YAML scalars, so ``true``/``false`` are real booleans (not ``bool("False") == True``).

A YAML file may name overlays (``overlay: other.yaml``, or a list; paths relative to the file):
YAML files whose keys are laid over its own, section by section. ``load_config(path,
overlays=[...])`` lays overlays over any config, as repeated ``--config`` files do in `morec train`:
:data:`SMOKE_OVERLAY` (``--config smoke.yaml``, tiny budgets for tests and quick checks) and
``configs/shaping/*.yaml`` are such overlays.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from morec.bundled_configs import configs_dir, find_config
from morec.dynamics.config import EnsembleConfig
from morec.dynamics_reward.config import MIN_SNAPSHOTS, DynamicsRewardConfig, FewSnapshotsWarning, MorecFilterConfig
from morec.errors import UserError
from morec.learners.config import ALGORITHMS, AgentConfig, MobileConfig
from morec.rollout.config import RolloutConfig
from morec.shaping.config import ShapingConfig
from morec.tasks import get_task

SMOKE_OVERLAY = (configs_dir() or Path("configs")) / "smoke.yaml"  # the smoke budget, laid over any config
OVERLAY_KEY = "overlay"


class ConfigError(UserError, ValueError):
    """A config key, value or combination is invalid; the message names it."""


MOBILE_MIN_ELITES = 2  # dynamics named by dynamics_path are checked against it when they load
MOBILE_ELITES_REASON = (
    f"MOBILE's penalty is the spread (std) over the elites' predictions and needs at least {MOBILE_MIN_ELITES}"
)


@dataclass
class TrainSettings:
    epochs: int = 3000
    steps_per_epoch: int = 1000
    batch_size: int = 256
    real_ratio: float = 0.05
    eval_every: int = 1  # epochs between evaluations
    eval_episodes: int = 10
    log_every: int = 100  # gradient steps between training scalars
    # on, off, or auto (on for CUDA, off on the CPU): torch.compile the actor and critics, and on CUDA
    # capture the whole gradient step as one CUDA graph (morec/learners/cuda_graph.py)
    compile: str | bool = "auto"
    # on, off, or auto (on for CUDA, off on the CPU): evaluate each epoch's policy in another process,
    # on the CPU, while the next epoch trains (morec/training/background_evaluation.py)
    evaluate_in_background: str | bool = "auto"
    # on, off, or auto (on for CUDA, off on the CPU): with `morec train --seeds`, update all seeds as one
    # learner with a seed dimension (morec/learners/stacked.py) instead of one after another
    stack_seeds: str | bool = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "batch_size", "eval_every", "eval_episodes", "log_every"):
            _check_at_least(f"train.{name}", getattr(self, name), 1)
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ConfigError(
                f"train.real_ratio is the fraction of each batch drawn from the dataset: give a number in [0, 1], "
                f"got {self.real_ratio}"
            )
        self.compile = _switch("train.compile", self.compile)
        self.evaluate_in_background = _switch("train.evaluate_in_background", self.evaluate_in_background)
        self.stack_seeds = _switch("train.stack_seeds", self.stack_seeds)

    def compiles(self, device: str) -> bool:
        """Whether the learner is compiled on ``device``: ``auto`` compiles on CUDA only (on the CPU the
        gain is small against the compile time; docs/speed.md has the numbers)."""
        return _is_on(self.compile, device)

    def evaluates_in_background(self, device: str) -> bool:
        """Whether evaluations run in another process: ``auto`` does so when the learner is on CUDA
        (the CPU is otherwise idle there); on the CPU it would take a second core from other runs."""
        return _is_on(self.evaluate_in_background, device)

    def stacks_seeds(self, device: str) -> bool:
        """Whether ``--seeds`` updates the seeds as one stacked learner: ``auto`` does so on CUDA, where
        a step waits on kernel launches (on the CPU the gain is small: docs/speed.md), and the seeds'
        runs then differ from separate runs in float rounding."""
        return _is_on(self.stack_seeds, device)


def _is_on(switch: str, device: str) -> bool:
    """An ``auto`` / ``on`` / ``off`` switch resolved for ``device``: ``auto`` is on for CUDA only."""
    return switch == "on" or (switch == "auto" and device.startswith("cuda"))


def _switch(key: str, value: str | bool) -> str:
    """``auto``, ``on`` or ``off``; YAML reads a bare on / off as true / false."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    if value not in ("auto", "on", "off"):
        raise ConfigError(f"{key} must be 'auto', 'on' or 'off', got {value!r}")
    return value


def _check_at_least(key: str, value: int, low: int) -> None:
    """A count or period: ``value >= low`` (``0`` epochs between evaluations would divide by zero
    after the models trained), else a :class:`ConfigError` naming ``key``."""
    if value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}")


# torch's device strings a run may name (checked without torch): cpu, cuda, cuda:N, mps
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps")


@dataclass
class TrainConfig:
    task: str = "hopper-medium-replay-v2"
    algorithm: str = "mobile"  # one of ALGORITHMS
    morec: bool = False
    seed: int = 0
    model_seed: int | None = None  # seed of the dynamics and the dynamics reward (None: `seed`); one value for
    # every seed of an experiment shares one trained model, so the seeds differ only in the learner
    device: str = "cpu"  # cpu, cuda, cuda:N or mps
    dataset: str | None = None  # default: the benchmark dataset named by `task`
    cache_dir: str = "runs/cache"  # trained dynamics and dynamics rewards, shared across runs
    # a trained model to use instead of training (or reusing from cache_dir) one: a `morec
    # train-dynamics --out` / `train-reward --out` folder or a cache entry; checked against the data's task
    dynamics_path: str | None = None
    reward_path: str | None = None
    dynamics: EnsembleConfig = field(default_factory=EnsembleConfig)
    reward: DynamicsRewardConfig = field(default_factory=DynamicsRewardConfig)
    filter: MorecFilterConfig = field(default_factory=MorecFilterConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    mobile: MobileConfig = field(default_factory=MobileConfig)
    train: TrainSettings = field(default_factory=TrainSettings)
    shaping: ShapingConfig = field(default_factory=ShapingConfig)  # reward shaping (default: none)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"algorithm must be {' or '.join(repr(a) for a in ALGORITHMS)}, got {self.algorithm!r}")
        try:
            get_task(self.task)
        except KeyError as err:
            raise ConfigError(f"task: {err.args[0]}") from err
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(
                f"device must be cpu, cuda, cuda:N (a GPU's index, e.g. cuda:0) or mps, got {self.device!r}"
            )
        if self.algorithm == "mobile" and self.rollout.penalty_coef:
            raise ConfigError("rollout.penalty_coef is MOPO's reward penalty; MOBILE uses mobile.beta instead")
        if self.algorithm == "mobile" and self.dynamics_path is None and self.dynamics.num_elites < MOBILE_MIN_ELITES:
            raise ConfigError(
                f"dynamics.num_elites={self.dynamics.num_elites}: {MOBILE_ELITES_REASON} elites; raise "
                "dynamics.num_elites"
            )
        if self.morec and self.reward.planned_snapshots < MIN_SNAPSHOTS:
            r = self.reward
            warnings.warn(
                f"reward.num_updates={r.num_updates} with one snapshot per {r.snapshot_interval} updates and "
                f"snapshot_stride={r.snapshot_stride} leaves {r.planned_snapshots} discriminator snapshot(s) "
                f"(MOREC needs at least {MIN_SNAPSHOTS}): raise reward.num_updates or lower reward.snapshot_stride",
                FewSnapshotsWarning,
                stacklevel=2,
            )

    @property
    def resolved_model_seed(self) -> int:
        """The seed the dynamics, the dynamics reward and the filter's threshold are trained and cached with."""
        return self.seed if self.model_seed is None else self.model_seed

    @property
    def name(self) -> str:
        return f"{self.task}-{self.algorithm}{'-morec' if self.morec else ''}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls, values: dict[str, Any], path: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{path or 'config'} must be a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(_unknown_key_message(path, unknown[0], names))
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{path}{key}.")
        else:
            kwargs[key] = _check_type(f"{path}{key}", value, hint)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{path.rstrip('.') or 'config'}: {err}") from err


def _check_type(key: str, value: Any, hint) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    allowed = args if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"{key} cannot be null")
    for option in allowed:
        base = get_origin(option) or option
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is float and isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if base is tuple and isinstance(value, (list, tuple)):
            item = get_args(option)[0] if get_args(option) else Any
            return tuple(v if item is Any else _check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
        if base in (int, str, bool) and type(value) is base:
            return value
    raise ConfigError(f"{key} must be {_type_words(hint)}, got {value!r} ({type(value).__name__})")


TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", tuple: "a list"}


def _type_words(hint) -> str:
    """``int | None`` -> ``an integer or null``: what a YAML user must write, not a Python type."""
    options = get_args(hint) if get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    words = [
        TYPE_WORDS.get(get_origin(o) or o, getattr(o, "__name__", str(o))) if o is not type(None) else "null"
        for o in options
    ]
    return " or ".join(words)


def _unknown_key_message(path: str, key: str, names: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(names), n=1)
    hint = (
        f"did you mean {path}{close[0]}?"
        if close
        else f"valid keys{' in ' + path.rstrip('.') if path else ''}: {', '.join(sorted(names))}"
    )
    return f"unknown config key {path + key!r}; {hint}"


def set_dotted(values: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to a nested dict."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"--set {assignment}: the value is not valid YAML ({_yaml_problem(err)}); write it in YAML, "
            "e.g. a list as key=[1, 2] and text holding ':', '#' or brackets in quotes"
        ) from None


def resolve_config(
    config: str | Path | list[str | Path] | None, overrides: list[str] = (), dataset: str | None = None
) -> TrainConfig:
    """What ``morec train --config ... --set ... --dataset ...`` trains: ``config`` (a file or a
    bundled config's path under ``configs/``; ``None``: the defaults; a list: later files laid over
    the first) with the ``overrides`` (``KEY=VALUE``, values in YAML), then ``dataset`` as it is (a
    path is never parsed as YAML)."""
    first, *later = [config] if isinstance(config, str | Path) else (config or [None])
    cfg = load_config(find_config(first), overrides, overlays=[find_config(c) for c in later])
    if dataset is not None:
        cfg.dataset = str(dataset)
    return cfg


def load_config(
    path: str | Path | None = None, overrides: list[str] = (), overlays: list[str | Path] = ()
) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (or the defaults), then the YAML ``overlays`` laid over
    it in order, then ``key=value`` overrides. Each file brings the overlays it names itself
    (``overlay:``). ``morec train --config A.yaml --config B.yaml`` is ``load_config(A, overlays=[B])``."""
    values: dict[str, Any] = {}
    for one in [*([] if path is None else [path]), *overlays]:  # the first file laid over nothing is itself
        one = Path(one)
        if not one.exists():
            raise ConfigError(f"config file {one} does not exist; {_existing_configs_hint(one)}")
        _lay_over(values, _read_yaml(one))
    for assignment in overrides:
        set_dotted(values, assignment)
    return _build(TrainConfig, values, "")


def _read_yaml(path: Path, named_by: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping in ``path`` with the overlays it names (``overlay:``) laid over it."""
    if path.resolve() in named_by:
        raise ConfigError(f"config overlay {path} names itself through {' -> '.join(map(str, named_by))}")
    if not path.is_file():
        raise ConfigError(f"config overlay {path}{f' (named by {named_by[-1]})' if named_by else ''} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(err)}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(values).__name__}")
    named = values.pop(OVERLAY_KEY, None)
    overlays = [] if named is None else [named] if isinstance(named, str) else named
    if not isinstance(overlays, list) or not all(isinstance(o, str) for o in overlays):
        raise ConfigError(
            f"{path}: {OVERLAY_KEY} must be a file name or a list of file names (relative to the file), got {named!r}"
        )
    for overlay in overlays:
        _lay_over(values, _read_yaml(path.parent / overlay, (*named_by, path.resolve())))
    return values


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's complaint on one line, with the line and column where it has them."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _lay_over(values: dict[str, Any], overlay: dict[str, Any]) -> None:
    """Overlay keys replace ``values``' keys; sections are merged key by key."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            _lay_over(values[key], value)
        else:
            values[key] = value


def _existing_configs_hint(path: Path) -> str:
    """Where configs are: the YAML files beside the missing one, or the shipped tree's tasks."""
    near = sorted(p.name for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
    if near:
        return f"configs in {path.parent}: {', '.join(near)}"
    shipped = configs_dir()
    if shipped is None:
        return "pass a YAML file, or no --config for the built-in defaults"
    example = shipped / "d4rl" / "hopper-medium-replay-v2" / "mobile_morec.yaml"
    return f"configs live in {shipped}/<benchmark>/<task>/<variant>.yaml, e.g. {example}"


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{"train.epochs": (3, 5), ...}``: the dotted keys, sorted, whose values differ between two
    config dicts (lists and tuples compare alike, so a YAML-loaded config matches its dataclass)."""
    a, b = _flatten(old), _flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    return _build(TrainConfig, values, "")
