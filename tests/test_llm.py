"""LLM bridge: specs and prompt, the chat-completions client against a real loopback HTTP server,
the replay cache, and self-verification with error feedback and identity fallback."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from morec.credit import llm as llm_module
from morec.credit.factors import IdentityFactors
from morec.credit.llm import (
    CHECKS,
    CacheMissError,
    EnvironmentSpec,
    FactorSearchConfig,
    HTTPChatBackend,
    HTTPChatConfig,
    LLMError,
    LLMRequestError,
    LLMResponseError,
    LLMUnavailableError,
    ReplayCache,
    ScriptedBackend,
    build_messages,
    builtin_spec,
    check_answer,
    effective_rank,
    extract_code,
    generate_factor_encoder,
    load_factor_encoder,
    spec_for_dataset,
)
from morec.credit.sandbox import SandboxedEncoder, SandboxLimits
from morec.data import OfflineDataset
from morec.tasks import DOMAINS

GOOD_CODE = """def compute_factors(obs, act):
    height_margin = obs[:, 0] - 0.7
    forward_speed = obs[:, 5]
    tilt = np.abs(obs[:, 1])
    effort = np.sum(act ** 2, axis=1)
    return np.stack([height_margin, forward_speed, tilt, effort], axis=1)
"""
REDUNDANT_CODE = """def compute_factors(obs, act):
    return [obs[:, 0], 2.0 * obs[:, 0] + 1.0, obs[:, 5]]
"""
BATCH_STATS_CODE = """def compute_factors(obs, act):
    return obs[:, :3] - obs[:, :3].mean(axis=0)
"""


def answer(code: str, text: str = "The hopper should stay upright and move forward.") -> str:
    return f"{text}\n\n```python\n{code}```\n"


def good_factors(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return np.stack([obs[:, 0] - 0.7, obs[:, 5], np.abs(obs[:, 1]), np.sum(act**2, axis=1)], axis=1)


FAST = FactorSearchConfig(
    n_candidates=1,
    max_repair_rounds=2,
    n_probes=64,
    limits=SandboxLimits(timeout_s=2.0, memory_mb=256),
    encode_limits=SandboxLimits(timeout_s=5.0, memory_mb=256),
)


@pytest.fixture(scope="module")
def dataset() -> OfflineDataset:
    rng = np.random.default_rng(0)
    n = 300
    obs = rng.normal(size=(n, 11))
    obs[:, 0] += 1.25
    return OfflineDataset.from_arrays(
        obs,
        rng.uniform(-1, 1, size=(n, 3)),
        rng.normal(size=n),
        np.zeros(n, bool),
        next_observations=obs + 0.01,
        env_id="hopper",
    )


# ---------------------------------------------------------------------------------- loopback server
class ChatServer:
    """A chat-completions endpoint on 127.0.0.1 (ephemeral port) playing a script of responses:
    ``("answer", text)``, ``("status", code, json_body)``, ``("raw", code, bytes)`` or
    ``("sleep", seconds, action)``. Unscripted requests get HTTP 500."""

    def __init__(self) -> None:
        self.script: list[tuple] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                    action = server.script.pop(0) if server.script else ("status", 500, {"error": "script exhausted"})
                try:
                    self._play(action)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def _play(self, action: tuple) -> None:
                if action[0] == "sleep":
                    time.sleep(action[1])
                    return self._play(action[2])
                if action[0] == "answer":
                    code, raw = (
                        200,
                        json.dumps(
                            {
                                "object": "chat.completion",
                                "choices": [
                                    {
                                        "index": 0,
                                        "message": {"role": "assistant", "content": action[1]},
                                        "finish_reason": "stop",
                                    }
                                ],
                            }
                        ).encode(),
                    )
                elif action[0] == "status":
                    code, raw = action[1], json.dumps(action[2]).encode()
                else:
                    code, raw = action[1], action[2]
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def backend(self, **overrides) -> HTTPChatBackend:
        settings = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01, "api_key": "test-key", **overrides}
        return HTTPChatBackend(HTTPChatConfig(self.base_url, "test-model", **settings))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server():
    srv = ChatServer()
    yield srv
    srv.stop()


MESSAGES = [{"role": "user", "content": "hello"}]


# ---------------------------------------------------------------------------------- specs and prompt
@pytest.mark.parametrize("task", ["hopper", "halfcheetah-medium-v2", "Walker2d-v4"])
def test_builtin_specs_match_the_d4rl_layout(task):
    spec = builtin_spec(task)
    domain = next(d for d in DOMAINS.values() if d.gym_name == spec.name)
    assert (len(spec.observation), len(spec.action)) == (domain.obs_dim, domain.act_dim)
    n_joints = domain.act_dim
    assert "torso" in spec.observation[0] and "forward speed" in spec.observation[2 + n_joints]
    clipped = "clipped to [-10, 10]" in spec.observation[-1]
    assert clipped == (spec.name != "HalfCheetah")  # gymnasium v4 clips qvel for Hopper and Walker2d only
    neorl = builtin_spec(task, "neorl")
    assert neorl.observation[0].startswith("x-coordinate") and neorl.observation[1:] == spec.observation


def test_spec_for_dataset_and_user_specs(dataset):
    assert spec_for_dataset(dataset) == builtin_spec("hopper")
    user = EnvironmentSpec.from_dict(
        json.loads(
            json.dumps(
                {"name": "Toy", "description": "Reach the origin.", "observation": ["x", "y"], "action": ["push"]}
            )
        )
    )
    user.check_dims(2, 1)
    with pytest.raises(ValueError, match="describes 2 observation"):
        user.check_dims(11, 3)
    with pytest.raises(ValueError, match="lacks"):
        EnvironmentSpec.from_dict({"name": "x"})
    messages = build_messages(user)
    assert [m["role"] for m in messages] == ["system", "user"]
    text = messages[1]["content"]
    assert "0: x" in text and "1: y" in text and "0: push" in text and "[N, 2]" in text
    assert "exactly one python code block" in text and "def compute_factors(obs, act):" in text
    assert "latent reward factors" in messages[0]["content"]


def test_extract_code():
    assert extract_code(answer(GOOD_CODE)) == GOOD_CODE
    assert extract_code("```\n" + GOOD_CODE + "```") == GOOD_CODE
    with pytest.raises(ValueError, match="no ```python code block"):
        extract_code("def compute_factors(obs, act): return obs")
    with pytest.raises(ValueError, match="no code block defines"):
        extract_code("```python\nx = 1\n```")
    with pytest.raises(ValueError, match="2 code blocks"):
        extract_code(answer(GOOD_CODE) + answer(GOOD_CODE))


def test_scripted_backend_plays_in_order():
    backend = ScriptedBackend(["a", LLMUnavailableError("down"), "c"])
    assert backend.complete(MESSAGES) == "a"
    with pytest.raises(LLMUnavailableError):
        backend.complete(MESSAGES, seed=1)
    assert backend.complete(MESSAGES, seed=2) == "c"
    with pytest.raises(LLMError, match="only 3 answers"):
        backend.complete(MESSAGES)
    assert [seed for _, seed in backend.requests] == [0, 1, 2, 0]


# ---------------------------------------------------------------------------------- HTTP client
def test_http_request_format_and_answer(server):
    server.script = [("answer", "hi there")]
    assert server.backend(temperature=0.3, max_tokens=77).complete(MESSAGES, seed=5) == "hi there"
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer test-key"
    assert req["body"] == {"model": "test-model", "messages": MESSAGES, "temperature": 0.3, "max_tokens": 77, "seed": 5}


def test_config_from_environment(monkeypatch):
    monkeypatch.delenv("MOREC_LLM_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="MOREC_LLM_BASE_URL"):
        HTTPChatConfig.from_env(model="m")
    monkeypatch.setenv("MOREC_LLM_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("MOREC_LLM_MODEL", "env-model")
    monkeypatch.setenv("MOREC_LLM_API_KEY", "secret-key")
    cfg = HTTPChatConfig.from_env(timeout_s=3.0)
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.timeout_s) == (
        "http://127.0.0.1:9/v1",
        "env-model",
        "secret-key",
        3.0,
    )
    assert "secret-key" not in repr(cfg) and "secret-key" not in repr(HTTPChatBackend(cfg))
    assert HTTPChatConfig.from_env(model="arg-model").model == "arg-model"
    with pytest.raises(ValueError, match="http"):
        HTTPChatConfig("127.0.0.1:8765", "m")


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"<html>bad gateway page</html>", "not JSON"),
        (json.dumps({"choices": []}).encode(), "choices"),
        (json.dumps({"choices": [{"message": {"content": None}}]}).encode(), "non-text"),
    ],
)
def test_malformed_response_is_a_clear_error(server, raw, match):
    server.script = [("raw", 200, raw)]
    with pytest.raises(LLMResponseError, match=match):
        server.backend().complete(MESSAGES)
    assert len(server.requests) == 1  # not retried


def test_timeout_then_success_thanks_to_retries(server):
    server.script = [("sleep", 1.0, ("answer", "late")), ("answer", "on time")]
    start = time.monotonic()
    assert server.backend(timeout_s=0.3).complete(MESSAGES) == "on time"
    assert len(server.requests) == 2 and time.monotonic() - start < 3.0


def test_server_errors_then_success(server):
    server.script = [("status", 500, {"error": "boom"}), ("status", 503, {"error": "busy"}), ("answer", "ok")]
    assert server.backend().complete(MESSAGES) == "ok"
    assert len(server.requests) == 3


def test_server_errors_exhaust_the_retries(server):
    server.script = [("status", 502, {"error": "bad gateway"})] * 3
    with pytest.raises(LLMUnavailableError, match="failed 3 times.*HTTP 502"):
        server.backend(max_retries=2).complete(MESSAGES)
    assert len(server.requests) == 3


def test_unauthorized_fails_immediately(server):
    server.script = [("status", 401, {"error": {"message": "invalid api key"}}), ("answer", "never sent")]
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match="HTTP 401.*invalid api key.*MOREC_LLM_API_KEY") as info:
        server.backend(backoff_s=1.0).complete(MESSAGES)
    assert info.value.status == 401 and len(server.requests) == 1 and time.monotonic() - start < 1.0


def test_connection_refused_is_unavailable():
    srv = ChatServer()
    backend = srv.backend(max_retries=1)
    srv.stop()
    with pytest.raises(LLMUnavailableError, match="failed 2 times.*connection"):
        backend.complete(MESSAGES)


# ---------------------------------------------------------------------------------- verification
def _probes(dataset, n=64):
    return dataset.observations[:n].astype(np.float64), dataset.actions[:n].astype(np.float64)


@pytest.mark.parametrize(
    "reply, check",
    [
        ("Height and speed matter most.", "format"),
        (answer("import os\ndef compute_factors(obs, act):\n    return obs\n"), "validate"),
        (answer("def compute_factors(obs, act):\n    return obs[:, 40]\n"), "run"),
        (answer("def compute_factors(obs, act):\n    return 1.0 / (obs[:, :2] * 0.0)\n"), "run"),  # inf
        (answer("def compute_factors(obs, act):\n    while True:\n        pass\n"), "run"),  # time budget
        (answer("def compute_factors(obs, act):\n    return np.tile(obs, (1, 4))\n"), "factor_count"),
        (
            answer(
                "calls = [0]\n\ndef compute_factors(obs, act):\n    calls[0] += 1\n    return obs[:, :2] + calls[0]\n"
            ),
            "deterministic",
        ),
        (answer(BATCH_STATS_CODE), "batch_consistent"),
        (answer("def compute_factors(obs, act):\n    return [obs[:, 0], obs[:, 0] * 0.0 + 1.0]\n"), "varies"),
    ],
)
def test_each_check_catches_its_failure(dataset, reply, check):
    obs, act = _probes(dataset)
    config = FactorSearchConfig(max_factors=32, limits=SandboxLimits(timeout_s=1.0, memory_mb=256))
    _, report = check_answer(reply, obs, act, config)
    assert not report.passed and report.failed_check == check, report
    assert report.progress == CHECKS.index(check) and report.error


FAKES_UNJAILED = """import json, os, struct

def compute_factors(obs, act):
    head = json.dumps({"ok": False, "kind": "unjailed", "message": "the sandbox jail could not be set up: pass "
                       "--allow-unjailed-llm-code", "payload": 0}).encode()
    os.write(1, struct.pack(">I", len(head)) + head)
    os._exit(0)
"""


def test_a_candidate_claiming_the_jail_failed_fails_alone(dataset, monkeypatch):
    """Code that got past the gate and answers a call with an ``unjailed`` error (which would stop
    the whole search and suggest ``--allow-unjailed-llm-code``) is one failed candidate."""
    from morec.credit import sandbox

    unguarded_child = str(Path(__file__).with_name("unguarded_sandbox_child.py"))

    class Unguarded(sandbox.SandboxWorker):  # the gate off, so the code can write to the protocol pipe
        def _child_argv(self) -> list[str]:
            argv = super()._child_argv()
            return [argv[0], "-I", unguarded_child, *argv[3:]]

    no_gate = lambda source, entry_point=sandbox.ENTRY_POINT: None  # noqa: E731
    monkeypatch.setattr(sandbox, "validate_source", no_gate)
    monkeypatch.setattr(llm_module, "validate_source", no_gate)
    monkeypatch.setattr(llm_module, "SandboxWorker", Unguarded)
    obs, act = _probes(dataset)
    _, report = check_answer(answer(FAKES_UNJAILED), obs, act, FAST)
    assert not report.passed and report.failed_check == "run" and report.error.startswith("crashed:"), report
    assert "allow-unjailed" not in report.error


def test_passing_check_reports_factor_statistics(dataset):
    obs, act = _probes(dataset)
    code, report = check_answer(answer(REDUNDANT_CODE), obs, act, FAST)
    assert report.passed and code == REDUNDANT_CODE and report.n_factors == 3
    assert report.redundant_pairs == [(0, 1)] and 1.7 < report.effective_rank < 2.0  # eigenvalues ~ (2, 1, 0)
    assert len(report.factor_stats["std"]) == 3
    assert effective_rank(np.ones((10, 3))) == 0.0


def test_good_answer_over_http_and_consolidation(server, dataset, tmp_path):
    server.script = [("answer", answer(REDUNDANT_CODE)), ("answer", answer(GOOD_CODE))]
    config = replace(FAST, n_candidates=2)
    result = generate_factor_encoder(server.backend(), builtin_spec("hopper"), dataset, tmp_path, config)
    assert not result.fallback and result.reason is None and result.code == GOOD_CODE
    enc = result.encoder
    assert isinstance(enc, SandboxedEncoder) and enc.source == "llm" and enc.name.startswith("llm-Hopper-")
    obs, act = dataset.observations[:50], dataset.actions[:50]
    np.testing.assert_allclose(enc(obs, act), good_factors(obs.astype(np.float64), act.astype(np.float64)))
    enc.close()
    assert [r["body"]["seed"] for r in server.requests] == [0, 1]  # two distinct samples
    assert (
        "0: z-coordinate (height above the ground) of the torso, m"
        in server.requests[0]["body"]["messages"][1]["content"]
    )
    probes = json.loads((tmp_path / "probes.json").read_text())
    assert probes["chosen"] == 1 and [a["passed"] for a in probes["attempts"]] == [True, True]
    assert (tmp_path / "factors.py").read_text() == GOOD_CODE
    reloaded = load_factor_encoder(tmp_path)
    assert reloaded.name == enc.name and reloaded.n_factors == 4
    np.testing.assert_allclose(reloaded(obs, act), good_factors(obs.astype(np.float64), act.astype(np.float64)))
    reloaded.close()
    result_file = json.loads((tmp_path / "result.json").read_text())
    assert result_file["fallback"] is False and result_file["n_factors"] == 4
    assert len(json.loads((tmp_path / "dialogue.json").read_text())) == 2
    assert np.load(tmp_path / "probe_states.npz")["observations"].shape == (64, 11)


def test_missing_code_block_gets_feedback_then_passes(server, dataset, tmp_path):
    server.script = [("answer", "Sure! Use the torso height and the forward speed."), ("answer", answer(GOOD_CODE))]
    result = generate_factor_encoder(server.backend(), builtin_spec("hopper"), dataset, tmp_path, FAST)
    assert not result.fallback and [a["report"]["failed_check"] for a in result.attempts] == ["format", None]
    repair = server.requests[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! Use the torso height and the forward speed."}
    assert "[format]" in repair[-1]["content"] and "no ```python code block" in repair[-1]["content"]
    result.encoder.close()


def test_failed_verification_then_corrected_answer(server, dataset, tmp_path):
    server.script = [("answer", answer(BATCH_STATS_CODE)), ("answer", answer(GOOD_CODE))]
    result = generate_factor_encoder(server.backend(), builtin_spec("hopper"), dataset, tmp_path, FAST)
    assert not result.fallback and result.code == GOOD_CODE
    assert [a["stage"] for a in result.attempts] == ["candidate", "repair"]
    feedback = server.requests[1]["body"]["messages"][-1]["content"]
    assert "[batch_consistent]" in feedback and "64 states" in feedback
    result.encoder.close()


def test_fallback_to_identity_after_rounds_are_exhausted(dataset, tmp_path, caplog):
    bad = [
        answer("def compute_factors(obs, act):\n    return obs[:, 40]\n"),
        "no code at all",
        answer("import os\ndef compute_factors(obs, act):\n    return obs\n"),
        answer(BATCH_STATS_CODE),
    ]
    backend = ScriptedBackend(bad)
    config = replace(FAST, n_candidates=2, max_repair_rounds=2)
    (tmp_path / "factors.py").write_text("# left over from an earlier run\n")
    with caplog.at_level(logging.WARNING, logger="morec.credit.llm"):
        result = generate_factor_encoder(backend, builtin_spec("hopper"), dataset, tmp_path, config)
    assert result.fallback and isinstance(result.encoder, IdentityFactors) and result.code is None
    assert "no verified factor code after 2 candidates and 2 repair rounds" in result.reason
    assert "batch_consistent" in result.reason and "identity encoder" in caplog.text
    obs, act = dataset.observations[:5], dataset.actions[:5]
    np.testing.assert_allclose(result.encoder(obs, act), np.concatenate([obs, act], 1))
    assert (result.encoder.name, result.encoder.source) == ("identity", "identity")
    assert isinstance(load_factor_encoder(tmp_path), IdentityFactors)
    # the first repair starts from the candidate that got furthest (the IndexError one, check "run")
    assert backend.requests[2][0][-2]["content"] == bad[0] and backend.requests[2][1] == 2
    assert len(backend.requests) == 4
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["fallback"] is True and saved["encoder"] == "identity" and saved["n_factors"] == 14
    assert "batch_consistent" in saved["reason"]
    assert len(json.loads((tmp_path / "dialogue.json").read_text())) == 4
    assert json.loads((tmp_path / "probes.json").read_text())["chosen"] is None
    assert (tmp_path / "prompt.json").exists() and not (tmp_path / "factors.py").exists()


# ---------------------------------------------------------------------------------- replay cache
def test_replay_cache_records_then_replays_offline(dataset, tmp_path):
    srv = ChatServer()
    srv.script = [("answer", answer(GOOD_CODE))]
    recorder = ReplayCache(tmp_path / "cache", srv.backend())
    first = generate_factor_encoder(recorder, builtin_spec("hopper"), dataset, tmp_path / "run1", FAST)
    srv.stop()  # from here on nothing answers on the network
    assert recorder.recorded == 1 and len(list((tmp_path / "cache").glob("*.json"))) == 1
    entry = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert (
        entry["response"] == answer(GOOD_CODE)
        and "test-model" in entry["backend"]
        and "test-key" not in json.dumps(entry)
    )

    replay = ReplayCache(tmp_path / "cache")  # strictly offline
    second = generate_factor_encoder(replay, builtin_spec("hopper"), dataset, tmp_path / "run2", FAST)
    assert replay.hits == 1 and second.code == first.code and not second.fallback
    obs, act = dataset.observations[:20], dataset.actions[:20]
    np.testing.assert_array_equal(first.encoder(obs, act), second.encoder(obs, act))
    first.encoder.close()
    second.encoder.close()


def test_a_real_small_models_recorded_answers_replay_to_the_same_fallback(dataset, tmp_path):
    """tests/data/llm_replay_smollm2_hopper holds what SmolLM2-135M-Instruct (llama.cpp's server on
    loopback) answered to `morec relabel --factors llm` on hopper: unparseable code, prose without a
    code block and a wrong function name, over 3 candidates and 3 repair rounds. Replayed offline,
    the same checks must refuse the same answers and fall back to identity factors."""
    replay = ReplayCache(Path(__file__).parent / "data" / "llm_replay_smollm2_hopper")
    config = replace(FactorSearchConfig(), limits=FAST.limits, encode_limits=FAST.encode_limits)
    result = generate_factor_encoder(replay, builtin_spec("hopper"), dataset, tmp_path, config)
    assert replay.hits == 6 and result.fallback and isinstance(result.encoder, IdentityFactors)
    assert [a["report"]["failed_check"] for a in result.attempts] == [
        "validate",
        "format",
        "validate",
        "validate",
        "validate",
        "format",
    ]
    assert "no code block defines `def compute_factors(obs, act):`" in result.reason


def test_strict_offline_cache_miss_errors(dataset, tmp_path):
    cache = ReplayCache(tmp_path / "empty")
    with pytest.raises(CacheMissError, match="offline replay: no recording"):
        cache.complete(MESSAGES)
    with pytest.raises(CacheMissError):
        generate_factor_encoder(cache, builtin_spec("hopper"), dataset, tmp_path / "run", FAST)
    assert "CacheMissError" in json.loads((tmp_path / "run" / "result.json").read_text())["error"]
    with pytest.raises(ValueError, match="failed before choosing"):
        load_factor_encoder(tmp_path / "run")


def test_cache_key_depends_on_messages_and_seed(tmp_path):
    backend = ScriptedBackend(["one", "two", "three"])
    cache = ReplayCache(tmp_path, backend)
    assert [cache.complete(MESSAGES), cache.complete(MESSAGES, seed=1), cache.complete(MESSAGES)] == [
        "one",
        "two",
        "one",
    ]
    assert cache.complete([{"role": "user", "content": "other"}]) == "three"
    assert (cache.hits, cache.recorded) == (1, 3)


# ---------------------------------------------------------------------------------- optional live model
@pytest.mark.skipif(
    not os.environ.get("MOREC_LLM_LIVE_TEST"),
    reason="set MOREC_LLM_LIVE_TEST=1 and MOREC_LLM_BASE_URL to try a real server",
)
def test_live_server_smoke(dataset, tmp_path):
    backend = HTTPChatBackend(
        HTTPChatConfig.from_env(model=os.environ.get("MOREC_LLM_MODEL", "local"), timeout_s=120.0)
    )
    result = generate_factor_encoder(backend, builtin_spec("hopper"), dataset, tmp_path, FAST)
    assert (tmp_path / "result.json").exists() and result.encoder(dataset.observations[:4], dataset.actions[:4]).shape[
        0
    ] == 4


def test_a_candidate_that_breaks_the_checks_does_not_end_the_search(dataset, tmp_path, monkeypatch):
    """Issue 12 (V3): a deep expression, a checker fault and a secret-leaking error each fail their
    candidate only; the next candidate is still tried and chosen."""
    deep = answer("def compute_factors(obs, act):\n    return obs" + " + obs" * 400 + "\n")
    faulty = answer("def compute_factors(obs, act):\n    return obs[:, :2] * 2.0\n")
    leaky = answer(
        "def compute_factors(obs, act):\n    raise ValueError('key sk-abcdefghijklmnopqrstuvwx in /root/.env')\n"
    )
    real_run_checks = llm_module._run_checks

    def run_checks(code, *args):
        if "* 2.0" in code:
            raise RecursionError("maximum recursion depth exceeded")
        return real_run_checks(code, *args)

    monkeypatch.setattr(llm_module, "_run_checks", run_checks)
    backend = ScriptedBackend([deep, faulty, leaky, answer(GOOD_CODE)])
    result = generate_factor_encoder(backend, builtin_spec("hopper"), dataset, tmp_path, replace(FAST, n_candidates=4))
    result.encoder.close()
    reports = [a["report"] for a in result.attempts]
    assert [r["failed_check"] for r in reports] == ["validate", "run", "run", None]
    assert "nested" in reports[0]["error"] and "RecursionError" in reports[1]["error"]
    assert (
        "sk-" not in reports[2]["error"] and "/root" not in reports[2]["error"] and "<redacted>" in reports[2]["error"]
    )
    assert not result.fallback and result.code == GOOD_CODE
    written = json.loads((tmp_path / "dialogue.json").read_text())
    assert all("sk-abcdefghijklmnopqrstuvwx" not in (a["report"]["error"] or "") for a in written)


def test_allowing_unjailed_relaxes_both_limits_and_nothing_else():
    config = FactorSearchConfig().allowing_unjailed()
    assert config.limits.allow_unjailed and config.encode_limits.allow_unjailed
    assert replace(config.limits, allow_unjailed=False) == FactorSearchConfig().limits
    assert not FactorSearchConfig().limits.allow_unjailed  # refusing is the default


def test_extracting_code_takes_linear_time_on_a_hostile_answer():
    import time

    from morec.credit.llm import MAX_ANSWER_CHARS

    for hostile in ("```\n" + "\n" * (MAX_ANSWER_CHARS - 10) + "```", "```python\n" * (MAX_ANSWER_CHARS // 10)):
        start = time.perf_counter()
        with pytest.raises(ValueError):
            extract_code(hostile)
        assert time.perf_counter() - start < 1.0  # was 51 s for the first (a quadratic regex)
    fenced = (
        "Here:\n```python\ndef helper(x):\n    return x\n\n  def compute_factors(obs, act):\n    return "
        "obs\n```\nand ```text\nnot code\n```"
    )
    assert extract_code(fenced).startswith("def helper(x):") and "compute_factors" in extract_code(fenced)
