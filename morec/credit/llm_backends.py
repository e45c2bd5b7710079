"""Chat backends for the LLM bridge (:mod:`morec.credit.llm`), all with
``complete(messages, seed=0) -> str``:

- :class:`HTTPChatBackend`: an OpenAI-compatible ``/chat/completions`` server over ``urllib``,
  configured by :class:`HTTPChatConfig` (arguments or ``MOREC_LLM_BASE_URL``, ``MOREC_LLM_MODEL``,
  ``MOREC_LLM_API_KEY``), with retries and backoff on timeouts, connection errors, 5xx, 408 and 429;
- :class:`ReplayCache`: records answers to and replays them from JSON files; without a backend it is
  strictly offline;
- :class:`ScriptedBackend`: fixed answers, for tests.

Failures of a backend are :class:`LLMError` (not verification failures of an answer).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from morec.errors import UserError
from morec.io import atomic_write

logger = logging.getLogger(__name__)

ENV_BASE_URL = "MOREC_LLM_BASE_URL"
ENV_MODEL = "MOREC_LLM_MODEL"
ENV_API_KEY = "MOREC_LLM_API_KEY"

Message = dict[str, str]


class LLMError(UserError, RuntimeError):
    """Base class of backend failures (not verification failures): the server or the replay cache
    the user pointed to cannot answer."""


class LLMRequestError(LLMError):
    """The server refused the request (HTTP 4xx other than 408/429); retrying would not help."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class LLMResponseError(LLMError):
    """The server answered, but not in the chat-completions format."""


class LLMUnavailableError(LLMError):
    """Timeouts, connection failures or 5xx on every attempt."""


class CacheMissError(LLMError):
    """An offline :class:`ReplayCache` has no recording of the request."""


class LLMBackend(Protocol):
    def complete(self, messages: Sequence[Message], seed: int = 0) -> str:
        """The assistant's reply to ``messages``; ``seed`` tells repeated samples apart."""
        ...


@dataclass(frozen=True)
class HTTPChatConfig:
    """An OpenAI-compatible server. ``base_url`` ends before ``/chat/completions`` (e.g.
    ``http://127.0.0.1:8765/v1``). Attempts: ``1 + max_retries``, waiting ``backoff_s * 2**i``
    between them; retried: timeouts, connection errors, HTTP 5xx, 408 and 429."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if (
            urllib.parse.urlparse(self.base_url).scheme not in ("http", "https")
            or not urllib.parse.urlparse(self.base_url).netloc
        ):
            raise ValueError(f"base_url must be an http(s) URL like http://127.0.0.1:8765/v1, got {self.base_url!r}")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.backoff_s < 0:
            raise ValueError(f"timeout_s must be positive and max_retries/backoff_s non-negative: {self}")

    @classmethod
    def from_env(cls, **overrides: Any) -> HTTPChatConfig:
        """Arguments first, then ``MOREC_LLM_BASE_URL``, ``MOREC_LLM_MODEL``, ``MOREC_LLM_API_KEY``."""
        base_url = overrides.pop("base_url", None) or os.environ.get(ENV_BASE_URL)
        model = overrides.pop("model", None) or os.environ.get(ENV_MODEL)
        api_key = overrides.pop("api_key", None) or os.environ.get(ENV_API_KEY) or None
        if not base_url:
            raise ValueError(f"no LLM server: pass base_url or set {ENV_BASE_URL} (e.g. http://127.0.0.1:8765/v1)")
        if not model:
            raise ValueError(f"no model name: pass model or set {ENV_MODEL} (llama.cpp's server accepts any name)")
        return cls(base_url.rstrip("/"), model, api_key, **overrides)


class HTTPChatBackend:
    """``POST {base_url}/chat/completions`` with the standard library; proxies are bypassed for
    loopback hosts."""

    def __init__(self, config: HTTPChatConfig):
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        host = urllib.parse.urlparse(self.url).hostname
        handlers = [urllib.request.ProxyHandler({})] if host in ("127.0.0.1", "localhost", "::1") else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"HTTPChatBackend(url={self.url!r}, model={self.config.model!r}, temperature={self.config.temperature})"

    def complete(self, messages: Sequence[Message], seed: int = 0) -> str:
        cfg = self.config
        body = json.dumps(
            {
                "model": cfg.model,
                "messages": list(messages),
                "temperature": cfg.temperature,
                "max_tokens": cfg.max_tokens,
                "seed": seed,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        problems = []
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(cfg.backoff_s * 2 ** (attempt - 1))
            try:
                with self._opener.open(
                    urllib.request.Request(self.url, body, headers, method="POST"), timeout=cfg.timeout_s
                ) as resp:
                    raw = resp.read()
                return self._content(raw)
            except urllib.error.HTTPError as err:
                detail = _excerpt(err.read())
                if err.code < 500 and err.code not in (408, 429):
                    raise LLMRequestError(self._refusal(err.code, detail), err.code) from None
                problems.append(f"HTTP {err.code}: {detail}")
            except (http.client.HTTPException, OSError) as err:  # timeouts, refused/reset connections, URLError
                reason = getattr(err, "reason", err)
                kind = "timeout" if isinstance(reason, TimeoutError) else "connection error"
                problems.append(f"{kind}: {reason}")
            logger.warning(
                "LLM request to %s failed (attempt %d/%d): %s", self.url, attempt + 1, cfg.max_retries + 1, problems[-1]
            )
        raise LLMUnavailableError(f"the LLM server at {self.url} failed {len(problems)} times: " + "; ".join(problems))

    def _content(self, raw: bytes) -> str:
        try:
            data = json.loads(raw)
        except ValueError:
            raise LLMResponseError(
                f"the LLM server at {self.url} returned a body that is not JSON: {_excerpt(raw)}"
            ) from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMResponseError(
                f"the LLM server at {self.url} returned JSON without choices[0].message.content: {_excerpt(raw)}"
            ) from None
        if not isinstance(content, str):
            raise LLMResponseError(f"the LLM server at {self.url} returned non-text content: {_excerpt(raw)}")
        return content

    def _refusal(self, code: int, detail: str) -> str:
        hint = {
            401: f"check the API key ({ENV_API_KEY})",
            403: f"check the API key ({ENV_API_KEY}) and its permissions",
            404: f"check the base URL ({ENV_BASE_URL}, usually ending in /v1) and the model name ({ENV_MODEL})",
        }
        return f"the LLM server at {self.url} refused the request with HTTP {code}: {detail}" + (
            f"; {hint[code]}" if code in hint else ""
        )


def _excerpt(raw: bytes, limit: int = 300) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


class ReplayCache:
    """Wraps a backend and records each answer as ``<directory>/<key>.json``, the key being a hash of
    the request (messages and seed). A recorded request is answered from the file. With
    ``backend=None`` it is strictly offline: a miss raises :class:`CacheMissError`. Use one
    directory per model and sampling settings; the recorder's ``repr`` is kept in each file."""

    def __init__(self, directory: str | Path, backend: LLMBackend | None = None):
        self.directory = Path(directory)
        self.backend = backend
        self.hits = 0
        self.recorded = 0

    @staticmethod
    def key(messages: Sequence[Message], seed: int = 0) -> str:
        request = json.dumps({"messages": list(messages), "seed": seed}, sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(request.encode()).hexdigest()

    def complete(self, messages: Sequence[Message], seed: int = 0) -> str:
        key = self.key(messages, seed)
        path = self.directory / f"{key}.json"
        if path.exists():
            entry = json.loads(path.read_text())
            if entry.get("request") != {"messages": list(messages), "seed": seed}:
                raise LLMError(f"cache file {path} does not hold this request (edited or corrupt); delete it")
            self.hits += 1
            return entry["response"]
        if self.backend is None:
            raise CacheMissError(
                f"offline replay: no recording of request {key[:12]} in {self.directory}; "
                "record it first with a live backend"
            )
        response = self.backend.complete(messages, seed)
        entry = {
            "request": {"messages": list(messages), "seed": seed},
            "response": response,
            "backend": repr(self.backend),
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(entry, indent=2)))
        self.recorded += 1
        return response


class ScriptedBackend:
    """Returns ``answers`` in order (an ``Exception`` item is raised instead); records requests."""

    def __init__(self, answers: Sequence[str | Exception]):
        self.answers = list(answers)
        self.requests: list[tuple[list[Message], int]] = []

    def complete(self, messages: Sequence[Message], seed: int = 0) -> str:
        self.requests.append((list(messages), seed))
        if len(self.requests) > len(self.answers):
            raise LLMError(
                f"scripted backend has only {len(self.answers)} answers; request {len(self.requests)} has none"
            )
        answer = self.answers[len(self.requests) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer
