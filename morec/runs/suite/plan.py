"""What a suite runs: the runs (task, variant, seed), their directories and config files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from morec.bundled_configs import configs_dir
from morec.tasks import D4RL_LEVELS

# the shipped variants: config files under configs/<benchmark>/<task>/ without .yaml; `_morec`: MOREC as
# morec recommends it, `_morec_matched`: MOREC's rollout and filter with the host's learner settings,
# `paper/`: the paper's launcher (scripts/make_configs.py). A configs tree of your own (--configs) may name others.
VARIANTS = (
    "mopo",
    "mopo_morec",
    "mopo_morec_matched",
    "paper/mopo_morec",
    "mobile",
    "mobile_morec",
    "mobile_morec_matched",
    "paper/mobile_morec",
)
DEFAULT_VARIANTS = ("mopo", "mopo_morec", "mobile", "mobile_morec")  # a suite without --variants

BENCHMARK_TASKS = {
    "d4rl": [f"{d}-{lvl}-v2" for d in ("halfcheetah", "hopper", "walker2d") for lvl in D4RL_LEVELS if lvl != "expert"],
    "neorl": [f"{d}-v3-{lvl}-1000" for d in ("HalfCheetah", "Hopper", "Walker2d") for lvl in ("low", "medium", "high")],
}

# the per-task configs shipped with morec (a checkout's configs/, or morec/configs/ once installed)
DEFAULT_CONFIGS = configs_dir() or Path(__file__).resolve().parents[3] / "configs"

# Dataset locations the runs must see the same way the driver does (passed to every worker).
DATASET_ENV_VARS = ("D4RL_DATASET_DIR", "NEORL_DATASET_DIR", "MINARI_DATASETS_PATH")


@dataclass(frozen=True)
class RunSpec:
    task: str
    variant: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.task} {self.variant} seed {self.seed}"

    def run_dir(self, results: Path) -> Path:
        return results / self.task / self.variant / f"seed{self.seed}"


@dataclass
class SuiteConfig:
    """One suite. Paths are made absolute on creation: workers may start in another directory."""

    benchmark: str  # "d4rl" or "neorl": picks configs/<benchmark>/
    tasks: list[str]
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    results: Path = Path("runs/suite")
    configs: Path = DEFAULT_CONFIGS
    smoke: bool = False  # lay the smoke budget (configs/smoke.yaml) over every run's config (tests, trying a setup)
    dataset: str | None = None  # one dataset source for every task (else each task's benchmark file)
    overrides: list[str] = field(default_factory=list)  # `--set key=value` for every run, after the suite's own
    retries: int = 1  # extra attempts for a failed run (each resumes from its checkpoint) before it is reported
    env: dict[str, str] = field(default_factory=dict)  # environment variables for every run

    def __post_init__(self) -> None:
        self.results, self.configs = Path(self.results).resolve(), Path(self.configs).resolve()
        known = self.known_variants()
        unknown = sorted(set(self.variants) - set(known))
        if unknown:
            raise ValueError(
                f"unknown variant(s) {unknown}: choose from {known} (the configs in {self.configs / self.benchmark})"
            )
        if self.dataset and Path(self.dataset).exists():
            self.dataset = str(Path(self.dataset).resolve())
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

    def known_variants(self) -> list[str]:
        """The variants the configs tree has a file for (under any task): the shipped :data:`VARIANTS`,
        or the names of a tree of your own (``--configs``)."""
        tasks = [folder for folder in (self.configs / self.benchmark).iterdir() if folder.is_dir()]
        return sorted(
            {path.relative_to(task).with_suffix("").as_posix() for task in tasks for path in task.rglob("*.yaml")}
        )

    def config_path(self, run: RunSpec) -> Path:
        return self.configs / self.benchmark / run.task / f"{run.variant}.yaml"

    @property
    def overlays(self) -> list[Path]:
        """Files laid over every run's config: the smoke budget with ``smoke``."""
        return [self.configs / "smoke.yaml"] if self.smoke else []

    def check(self) -> None:
        """Every run's config file exists (before anything is scheduled)."""
        missing = sorted(
            {str(self.config_path(r)) for r in plan_runs(self)} - {str(p) for p in self.configs.rglob("*.yaml")}
        )
        if missing:
            raise FileNotFoundError(
                f"no config for {len(missing)} run(s), e.g. {missing[0]}; check --tasks/--variants against "
                f"{self.configs / self.benchmark} "
                "(or point --configs at a source checkout's configs/)"
            )


def plan_runs(cfg: SuiteConfig) -> list[RunSpec]:
    """All runs, variant-major: the first runs started are different (task, seed) pairs, so
    workers that start together train different dynamics instead of waiting on one cache lock."""
    return [RunSpec(t, v, s) for v in cfg.variants for t in cfg.tasks for s in cfg.seeds]
