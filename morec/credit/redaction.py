"""Scrub text that leaves this machine: error messages of untrusted code go into repair prompts sent
to a remote LLM and into ``dialogue.json``, so paths, environment values and anything shaped like a
secret are replaced before they do."""

from __future__ import annotations

import os
import re

_SECRET_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),  # OpenAI-style keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\b(api[_-]?key|token|secret|password|passwd)\b(\s*[:=]\s*)\S+"),
    re.compile(r"[A-Za-z0-9+/_=-]{32,}"),  # long opaque tokens (hex, base64)
)
_PATH = re.compile(r"(?<![\w.)\]])(?:~|\.{1,2})?/(?:[\w.@+-]+/?)+")
_MIN_ENV_VALUE = 6  # shorter values ("1", "C", "true") are everywhere in ordinary text


def redact(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` with values of ``environ`` (default: this process's environment) of at least six
    characters, secret-shaped tokens and file paths replaced by ``<redacted>`` / ``<path>``."""
    environ = os.environ if environ is None else environ
    for value in sorted({v for v in environ.values() if len(v) >= _MIN_ENV_VALUE}, key=len, reverse=True):
        text = text.replace(value, "<redacted>")
    for pattern in _SECRET_SHAPES:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>" if m.re.groups == 2 else "<redacted>", text)
    return _PATH.sub("<path>", text)
