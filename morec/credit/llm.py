"""LLM-written latent reward factors (LaRe): prompts, chat backends, self-verification, fallback.

Pipeline (:func:`generate_factor_encoder`): build the prompt from an :class:`EnvironmentSpec`,
ask a backend for ``n_candidates`` answers, check each one on probe states sampled from the
dataset (:func:`check_answer`), keep the best passing candidate (:func:`effective_rank` rule), else
feed the error of the most promising failure back for up to ``max_repair_rounds`` rounds, else fall
back to the identity encoder (:class:`~morec.credit.factors.IdentityFactors`) and say so. Every
request, answer and check is written to the run directory; :func:`load_factor_encoder` rebuilds
the chosen encoder from it. The returned encoder runs the code in :mod:`morec.credit.sandbox` at
use time too.

The chat backends (:class:`HTTPChatBackend`, :class:`ReplayCache`, :class:`ScriptedBackend`) and
their errors live in :mod:`morec.credit.llm_backends`; this module re-exports them.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from morec.credit.factors import IdentityFactors
from morec.credit.llm_backends import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    CacheMissError,
    HTTPChatBackend,
    HTTPChatConfig,
    LLMBackend,
    LLMError,
    LLMRequestError,
    LLMResponseError,
    LLMUnavailableError,
    Message,
    ReplayCache,
    ScriptedBackend,
)
from morec.credit.redaction import clean_untrusted_text
from morec.credit.sandbox import (
    ENTRY_POINT,
    SandboxedEncoder,
    SandboxError,
    SandboxLimits,
    SandboxWorker,
    code_digest,
    validate_source,
)
from morec.data import OfflineDataset
from morec.io import atomic_write
from morec.tasks import check_layout, get_task

logger = logging.getLogger(__name__)

__all__ = [  # the backends' names are re-exported for `from morec.credit.llm import ...`
    "CHECKS",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "CacheMissError",
    "CheckReport",
    "EnvironmentSpec",
    "FactorSearchConfig",
    "FactorSearchResult",
    "HTTPChatBackend",
    "HTTPChatConfig",
    "LLMBackend",
    "LLMError",
    "LLMRequestError",
    "LLMResponseError",
    "LLMUnavailableError",
    "Message",
    "ReplayCache",
    "ScriptedBackend",
    "build_messages",
    "builtin_spec",
    "check_answer",
    "effective_rank",
    "extract_code",
    "feedback_message",
    "generate_factor_encoder",
    "load_factor_encoder",
    "spec_for_dataset",
]


# ================================================================================== task specs
@dataclass(frozen=True)
class EnvironmentSpec:
    """What the model is told: a task description and the meaning of every observation and action
    index. Build one for a custom task directly or with :meth:`from_dict` (JSON keys ``name``,
    ``description``, ``observation``, ``action``; the last two are lists of strings)."""

    name: str
    description: str
    observation: tuple[str, ...]
    action: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "observation", tuple(self.observation))
        object.__setattr__(self, "action", tuple(self.action))
        if not self.observation or not self.action:
            raise ValueError(f"spec {self.name!r} must describe at least one observation and one action entry")
        if not all(isinstance(s, str) and s.strip() for s in self.observation + self.action):
            raise ValueError(f"spec {self.name!r}: every observation/action entry must be a non-empty string")

    def check_dims(self, obs_dim: int, act_dim: int) -> None:
        if (len(self.observation), len(self.action)) != (obs_dim, act_dim):
            raise ValueError(
                f"spec {self.name!r} describes {len(self.observation)} observation and {len(self.action)} action "
                f"entries but the data have {obs_dim} and {act_dim}; pass a spec matching the dataset layout"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "observation": list(self.observation),
            "action": list(self.action),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvironmentSpec:
        missing = {"name", "description", "observation", "action"} - set(data)
        if missing:
            raise ValueError(f"environment spec lacks {sorted(missing)}")
        return cls(data["name"], data["description"], tuple(data["observation"]), tuple(data["action"]))


_TASK_TEXT = {
    "hopper": "A two-dimensional one-legged robot (torso, thigh, leg, foot) must hop forward, in the +x "
    "direction, as fast as possible without falling. The episode ends early when the torso height "
    "drops to 0.7 or below, the torso angle leaves (-0.2, 0.2) rad, or any joint angle or velocity "
    "leaves (-100, 100).",
    "halfcheetah": "A two-dimensional cat-like robot with a back leg and a front leg (thigh, shin, foot each) "
    "must run forward, in the +x direction, as fast as possible. The episode never ends early.",
    "walker2d": "A two-dimensional biped (torso; right and left legs with thigh, leg, foot) must walk forward, "
    "in the +x direction, as fast as possible without falling. The episode ends early when the torso "
    "height leaves (0.8, 2.0) or the torso angle leaves (-1, 1) rad.",
}


def builtin_spec(task: str, layout: str | None = None) -> EnvironmentSpec:
    """Spec of a MuJoCo locomotion task (``hopper``, ``walker2d-medium-v2``, ``HalfCheetah-v4``, ...),
    read off gymnasium's v4 environments: ``qpos`` without x (with x first in the ``neorl`` layout),
    then ``qvel``, clipped to [-10, 10] for Hopper and Walker2d."""
    spec = get_task(task)
    domain, layout = spec.domain.name, layout or spec.layout
    joints = spec.domain.joints
    clip = " (clipped to [-10, 10])" if spec.domain.clips_velocities else ""
    height = (
        "z-coordinate of the torso relative to its initial height of 0.7 m, m"
        if domain == "halfcheetah"
        else "z-coordinate (height above the ground) of the torso, m"
    )
    positions = [height, "angle of the torso (pitch), rad"]
    positions += [f"angle of the {j} joint, rad" for j in joints]
    if check_layout(layout) == "neorl":
        positions.insert(0, "x-coordinate of the torso (distance travelled forward), m")
    velocities = [
        f"velocity of the torso along x (forward speed), m/s{clip}",
        f"velocity of the torso along z (vertical), m/s{clip}",
        f"angular velocity of the torso, rad/s{clip}",
    ]
    velocities += [f"angular velocity of the {j} joint, rad/s{clip}" for j in joints]
    text = _TASK_TEXT[domain] + " Keep the control effort (squared torques) small."
    actions = tuple(f"torque at the {j} joint, normalised to [-1, 1]" for j in joints)
    out = EnvironmentSpec(spec.domain.gym_name, text, tuple(positions + velocities), actions)
    out.check_dims(spec.domain.obs_dim_for(layout), spec.domain.act_dim)
    return out


def spec_for_dataset(dataset: OfflineDataset) -> EnvironmentSpec:
    """The built-in spec of a dataset recorded on a known MuJoCo task, in its layout."""
    if dataset.domain is None or dataset.metadata.get("layout") is None:
        raise ValueError("the dataset does not name a known MuJoCo task and layout; pass an EnvironmentSpec for it")
    return builtin_spec(dataset.domain, dataset.metadata["layout"])


# ================================================================================== prompt
SYSTEM_PROMPT = (
    "You are an expert in reinforcement learning and in writing correct, vectorised numpy code. "
    "You design latent reward factors: interpretable quantities, computed from one step's observation "
    "and action, that a learned decoder turns into per-step rewards when only the episode's total "
    "return is known."
)


def build_messages(spec: EnvironmentSpec) -> list[Message]:
    """The opening dialogue: LaRe's role, the task, every observation and action index, the rules
    and the exact answer format (one python code block defining ``compute_factors(obs, act)``)."""
    obs_lines = "\n".join(f"{i}: {text}" for i, text in enumerate(spec.observation))
    act_lines = "\n".join(f"{i}: {text}" for i, text in enumerate(spec.action))
    o, a = len(spec.observation), len(spec.action)
    user = f"""## Task: {spec.name}
{spec.description}

## Observation: obs[:, i], {o} entries
{obs_lines}

## Action: act[:, j], {a} entries
{act_lines}

## What to do
The reward of this task is only revealed once, as the return at the end of each episode. A decoder
will learn per-step rewards from latent factors that you compute for each single step.
1. Identify behaviours and states that are good or bad for the task and the observation or action
   entries that reveal them.
2. Write `{ENTRY_POINT}(obs, act)` returning several factors (usually 3 to 10) that evaluate the
   current step from different aspects.

Rules:
- obs has shape [N, {o}] and act has shape [N, {a}] (float64). Return an array of shape [N, K]
  (or a list of K arrays of shape [N]). Each row must depend only on its own obs/act row: no
  statistics over the batch.
- Vectorised and deterministic: no loops over rows, no randomness. Every factor must vary with the
  state or action. Avoid NaN and inf (guard divisions, logs and square roots).
- `np` (numpy) and `math` are already available; do not import anything. No files, network,
  eval/exec/getattr or names that start with an underscore.
- Use only the information described above, and as few observation entries as needed.

## Answer format
Optionally a short analysis in plain text, then exactly one python code block:
```python
def {ENTRY_POINT}(obs, act):
    ...
    return np.stack([factor_1, factor_2, ...], axis=1)
```"""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def feedback_message(error: str, n_probes: int) -> Message:
    return {
        "role": "user",
        "content": (
            f"Your code failed verification on {n_probes} states sampled from the dataset:\n{error}\n"
            f"Fix it and reply with exactly one python code block defining `{ENTRY_POINT}(obs, act)`."
        ),
    }


_LANGUAGE = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?")
_DEFINES_ENTRY = re.compile(rf"^[ \t]*def[ \t]+{ENTRY_POINT}[ \t]*\(", re.MULTILINE)  # [ \t], not \s: linear time


def fenced_blocks(answer: str) -> list[tuple[str, str]]:
    """``(language, body)`` of each closed ``` fence in ``answer``, in one pass (a regex with a lazy
    body re-scanned the rest of the answer from every opening fence)."""
    blocks = []
    for inside in answer.split("```")[1:-1:2]:  # the odd pieces lie between an opening and a closing fence
        first, newline, body = inside.partition("\n")
        language = _LANGUAGE.fullmatch(first)
        if newline and language:
            blocks.append((language.group(1), body))
    return blocks


def extract_code(answer: str) -> str:
    """The single fenced code block of ``answer`` that defines the entry point; ``ValueError``
    saying what is wrong otherwise."""
    blocks = [body for lang, body in fenced_blocks(answer) if lang.lower() in ("", "python", "py", "python3")]
    defining = [b for b in blocks if _DEFINES_ENTRY.search(b)]
    if not blocks:
        raise ValueError("the answer contains no ```python code block")
    if not defining:
        raise ValueError(f"no code block defines `def {ENTRY_POINT}(obs, act):`")
    if len(defining) > 1:
        raise ValueError(f"{len(defining)} code blocks define `{ENTRY_POINT}`; give exactly one")
    return defining[0].strip() + "\n"


# ================================================================================== verification
CHECKS = ("format", "validate", "run", "factor_count", "deterministic", "batch_consistent", "varies")


@dataclass(frozen=True)
class FactorSearchConfig:
    """``limits`` bound each verification call (its timeout is the time budget for the probe batch);
    ``encode_limits`` bound each call of the returned encoder (chunks of up to 65,536 rows)."""

    n_candidates: int = 3
    max_repair_rounds: int = 3
    n_probes: int = 256
    max_factors: int = 32
    limits: SandboxLimits = field(default_factory=lambda: SandboxLimits(timeout_s=5.0, memory_mb=1024))
    encode_limits: SandboxLimits = field(default_factory=lambda: SandboxLimits(timeout_s=60.0, memory_mb=2048))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_candidates < 1 or self.max_repair_rounds < 0 or self.n_probes < 2 or self.max_factors < 1:
            raise ValueError(f"need n_candidates >= 1, max_repair_rounds >= 0, n_probes >= 2, max_factors >= 1: {self}")

    def allowing_unjailed(self) -> FactorSearchConfig:
        """This config with both limits allowing a system without the jail (see :mod:`.sandbox`)."""
        return replace(
            self,
            limits=replace(self.limits, allow_unjailed=True),
            encode_limits=replace(self.encode_limits, allow_unjailed=True),
        )


@dataclass
class CheckReport:
    """How one answer fared. ``failed_check`` is the first of :data:`CHECKS` that failed."""

    passed: bool
    failed_check: str | None = None
    error: str | None = None
    n_factors: int | None = None
    seconds: float | None = None
    effective_rank: float | None = None
    redundant_pairs: list[tuple[int, int]] = field(default_factory=list)
    factor_stats: dict[str, list[float]] | None = None

    @property
    def progress(self) -> int:
        """How many checks passed; used to pick which failure to repair."""
        return len(CHECKS) if self.passed else CHECKS.index(self.failed_check)


def effective_rank(factors: np.ndarray) -> float:
    """``exp`` of the entropy of the normalised eigenvalues of the factors' correlation matrix
    (Roy & Vetterli 2007): about the number of independent directions the factors span. Duplicated
    or strongly correlated factors add little; constant factors add nothing."""
    f = factors[:, factors.std(0) > 0]
    if f.shape[1] == 0:
        return 0.0
    z = (f - f.mean(0)) / f.std(0)
    eig = np.linalg.svd(z, compute_uv=False) ** 2
    p = eig[eig > 1e-12 * eig.sum()] / eig.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


MAX_ANSWER_CHARS = 200_000


def check_answer(
    answer: str, obs: np.ndarray, act: np.ndarray, config: FactorSearchConfig
) -> tuple[str | None, CheckReport]:
    """Run :data:`CHECKS` on one answer with probe states ``obs [N, O]``, ``act [N, A]``: one code
    block; sandbox validation; runs within the time budget and memory limit and returns ``[N, K]``
    finite numbers; ``K <= max_factors``; the same output twice; the same rows when computed one at
    a time and as a reordered subset; every factor varies across the probes. Never raises for the
    answer's faults: whatever goes wrong becomes the failed check, with redacted error text."""
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
        return None, CheckReport(False, "format", f"the answer is not text of at most {MAX_ANSWER_CHARS} characters")
    try:
        code = extract_code(answer)
    except ValueError as err:
        return None, CheckReport(False, "format", str(err))
    try:
        validate_source(code)
    except SandboxError as err:
        return code, CheckReport(False, "validate", err.message)
    try:
        report = _run_checks(code, obs, act, config)
    except SandboxError as err:  # e.g. no jail on this system: the same for every candidate
        if err.kind == "unjailed":
            raise
        report = CheckReport(False, "run", f"{err.kind}: {err.message}")
    except Exception as err:  # noqa: BLE001  # one candidate's failure must not end the search
        report = CheckReport(False, "run", f"checking the code failed: {type(err).__name__}: {err}")
    if report.error is not None:  # the sandbox cleaned the child's text; this covers the checks' own
        report.error = clean_untrusted_text(report.error)
    return code, report


def _run_checks(code: str, obs: np.ndarray, act: np.ndarray, config: FactorSearchConfig) -> CheckReport:
    """The checks after validation (see :func:`check_answer`), in one jailed worker."""
    with SandboxWorker(code, config.limits) as worker:
        first = worker.run(obs, act)
        if not first.ok:
            if first.error.kind == "unjailed":  # the child could not jail itself: no candidate can run
                raise first.error
            return CheckReport(False, "run", f"{first.error.kind}: {first.error.message}")
        out, k = first.factors, first.factors.shape[1]
        report = CheckReport(False, n_factors=k, seconds=round(first.seconds, 4))
        if k > config.max_factors:
            return _failed(report, "factor_count", f"it returned {k} factors; return at most {config.max_factors}")
        again = worker.run(obs, act, max_columns=k)
        if not again.ok or not np.array_equal(again.factors, out):
            why = f"{again.error.kind}: {again.error.message}" if not again.ok else "the values differ"
            return _failed(
                report,
                "deterministic",
                f"a second call on the same input gave a different result ({why}); "
                "do not use randomness or state kept between calls",
            )
        subset = np.arange(len(obs))[::-2]
        pieces = [
            (np.arange(i, i + 1), worker.run(obs[i : i + 1], act[i : i + 1], max_columns=k))
            for i in range(min(4, len(obs)))
        ]
        pieces.append((subset, worker.run(obs[subset], act[subset], max_columns=k)))
        for rows, res in pieces:
            if (
                not res.ok
                or res.factors.shape != (len(rows), k)
                or not np.allclose(res.factors, out[rows], rtol=1e-6, atol=1e-9)
            ):
                why = f"{res.error.kind}: {res.error.message}" if not res.ok else "different values"
                return _failed(
                    report,
                    "batch_consistent",
                    f"rows computed in a smaller batch ({len(rows)} rows) do not match the "
                    f"full batch ({why}); compute each row from its own obs/act only",
                )
    std = out.std(0)
    constant = [int(j) for j in np.flatnonzero(std <= 1e-9 * (1.0 + np.abs(out.mean(0))))]
    report.factor_stats = {
        "mean": out.mean(0).tolist(),
        "std": std.tolist(),
        "min": out.min(0).tolist(),
        "max": out.max(0).tolist(),
    }
    if constant:
        return _failed(
            report,
            "varies",
            f"factor(s) {constant} are constant on all {len(obs)} probe states; every factor "
            "must depend on the state or action (use a continuous quantity, not a rare flag)",
        )
    corr = np.corrcoef(out, rowvar=False).reshape(k, k)
    report.redundant_pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if abs(corr[i, j]) > 0.99]
    report.effective_rank = round(effective_rank(out), 4)
    report.passed = True
    return report


def _failed(report: CheckReport, check: str, error: str) -> CheckReport:
    report.failed_check, report.error = check, error
    return report


# ================================================================================== the search
@dataclass
class FactorSearchResult:
    """``encoder`` is a :class:`SandboxedEncoder` (``source="llm"``) or, when ``fallback``, an
    :class:`IdentityFactors`; ``reason`` says why. ``attempts`` holds every answer's check."""

    encoder: SandboxedEncoder | IdentityFactors
    fallback: bool
    reason: str | None
    code: str | None
    attempts: list[dict[str, Any]]
    run_dir: Path


RUN_FILES = ("prompt.json", "probe_states.npz", "dialogue.json", "probes.json", "factors.py", "result.json")


def generate_factor_encoder(
    backend: LLMBackend,
    spec: EnvironmentSpec,
    dataset: OfflineDataset,
    run_dir: str | Path,
    config: FactorSearchConfig = FactorSearchConfig(),
) -> FactorSearchResult:
    """Ask ``backend`` for factor code for ``spec``, verify it on probe states from ``dataset`` and
    return an encoder. Among passing candidates the one with the highest :func:`effective_rank`
    wins (most independent information), then the one with fewer factors, then the earlier one.
    If none passes, the failure that got furthest through :data:`CHECKS` is sent back with its
    error, and each repair answer replaces it, up to ``max_repair_rounds`` times.

    Writes to ``run_dir``: ``prompt.json`` (spec and opening messages), ``probe_states.npz``,
    ``dialogue.json`` (every request, answer and check, updated as it goes), ``probes.json`` (the
    checks and the choice), ``factors.py`` (the verified code, unless it fell back) and
    ``result.json``. Backend failures (:class:`LLMError`) are not verification failures: they are
    recorded in ``result.json`` and raised.
    """
    spec.check_dims(dataset.obs_dim, dataset.act_dim)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:  # a rerun must not leave an earlier run's code or verdict behind
        (run_dir / name).unlink(missing_ok=True)
    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.choice(len(dataset), size=min(config.n_probes, len(dataset)), replace=False))
    obs, act = dataset.observations[rows].astype(np.float64), dataset.actions[rows].astype(np.float64)
    messages = build_messages(spec)
    _write_json(run_dir / "prompt.json", {"spec": spec.to_dict(), "messages": messages})
    np.savez(run_dir / "probe_states.npz", rows=rows, observations=obs, actions=act)
    attempts: list[dict[str, Any]] = []

    def ask(request: list[Message], seed: int, stage: str) -> dict[str, Any]:
        answer = backend.complete(request, seed)
        code, report = check_answer(answer, obs, act, config)
        attempt = {
            "stage": stage,
            "seed": seed,
            "request": request,
            "answer": answer,
            "code": code,
            "report": asdict(report),
        }
        attempts.append(attempt)
        _write_json(run_dir / "dialogue.json", attempts)
        logger.info(
            "factor candidate %d (%s): %s",
            len(attempts) - 1,
            stage,
            "passed" if report.passed else f"failed {report.failed_check}: {report.error}",
        )
        return attempt

    try:
        for i in range(config.n_candidates):
            ask(messages, config.seed + i, "candidate")
        if not any(a["report"]["passed"] for a in attempts) and config.max_repair_rounds:
            base = max(attempts, key=lambda a: CheckReport(**a["report"]).progress)  # first of the furthest
            for r in range(config.max_repair_rounds):
                request = messages + [
                    {"role": "assistant", "content": base["answer"]},
                    feedback_message(f"[{base['report']['failed_check']}] {base['report']['error']}", len(obs)),
                ]
                base = ask(request, config.seed + config.n_candidates + r, "repair")
                if base["report"]["passed"]:
                    break
    except LLMError as err:
        _write_json(run_dir / "result.json", {"fallback": None, "error": f"{type(err).__name__}: {err}"})
        raise

    ranked = [
        (a["report"]["effective_rank"], -a["report"]["n_factors"], -i)
        for i, a in enumerate(attempts)
        if a["report"]["passed"]
    ]
    index = -max(ranked)[2] if ranked else None
    chosen = None if index is None else attempts[index]
    summary = [{"stage": a["stage"], "seed": a["seed"], **a["report"]} for a in attempts]
    if chosen is None:
        last = attempts[-1]["report"]
        reason = (
            f"no verified factor code after {config.n_candidates} candidates and "
            f"{len(attempts) - config.n_candidates} repair rounds; last error [{last['failed_check']}] {last['error']}"
        )
        logger.warning(
            "LLM factor search for %s fell back to the identity encoder: %s (see %s)", spec.name, reason, run_dir
        )
        encoder: SandboxedEncoder | IdentityFactors = IdentityFactors()
        code = None
    else:
        code, reason = chosen["code"], None
        encoder = SandboxedEncoder(
            code, f"llm-{spec.name}-{code_digest(code)}", config.encode_limits, n_factors=chosen["report"]["n_factors"]
        )
        (run_dir / "factors.py").write_text(code)
    _write_json(
        run_dir / "probes.json", {"n_probes": len(obs), "checks": list(CHECKS), "chosen": index, "attempts": summary}
    )
    n_factors = dataset.obs_dim + dataset.act_dim if chosen is None else chosen["report"]["n_factors"]
    _write_json(
        run_dir / "result.json",
        {
            "fallback": chosen is None,
            "reason": reason,
            "encoder": encoder.name,
            "source": encoder.source,
            "n_factors": n_factors,
            "chosen": index,
        },
    )
    return FactorSearchResult(encoder, chosen is None, reason, code, attempts, run_dir)


def load_factor_encoder(run_dir: str | Path, limits: SandboxLimits | None = None) -> SandboxedEncoder | IdentityFactors:
    """The encoder a finished :func:`generate_factor_encoder` run chose, rebuilt from its
    ``result.json`` and ``factors.py`` (still sandboxed; ``limits`` default to the encode limits)."""
    run_dir = Path(run_dir)
    try:
        result = json.loads((run_dir / "result.json").read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{run_dir} has no result.json; it is not a finished factor search") from None
    if result.get("fallback") is None:
        raise ValueError(f"the factor search in {run_dir} failed before choosing an encoder: {result.get('error')}")
    if result["fallback"]:
        return IdentityFactors()
    code = (run_dir / "factors.py").read_text()
    limits = limits or FactorSearchConfig().encode_limits
    return SandboxedEncoder(code, result["encoder"], limits, n_factors=result["n_factors"])


def _write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, default=_jsonable)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
