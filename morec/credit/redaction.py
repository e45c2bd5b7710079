"""Scrub text that leaves this machine: error messages of untrusted code go into repair prompts sent
to a remote LLM and into ``dialogue.json``, so paths, environment values and anything shaped like a
secret are replaced before they do."""

from __future__ import annotations

import os
import re
import unicodedata

_SECRET_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),  # OpenAI-style keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\b(api[_-]?key|token|secret|password|passwd)\b(\s*[:=]\s*)\S+"),
    re.compile(r"[A-Za-z0-9+/_=-]{32,}"),  # long opaque tokens (hex, base64)
)
_PATH = re.compile(r"(?<![\w.)\]])(?:~|\.{1,2})?/(?:[\w.@+-]+/?)+")
_MIN_ENV_VALUE = 6  # shorter values ("1", "C", "true") are everywhere in ordinary text


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1: terminal escapes
# Unicode format characters (bidi overrides and isolates, zero-width characters, soft hyphen, BOM,
# tags), line and paragraph separators, and lone surrogates (which no UTF-8 log or file can hold)
_INVISIBLE_CATEGORIES = frozenset(("Cf", "Zl", "Zp", "Cs"))
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")  # heap and code addresses in reprs


def clean_untrusted_text(text: str) -> str:
    """Text written by untrusted code (the sandbox child's error messages), made safe to log, store
    and send: control characters (terminal escapes; tab and newline stay), Unicode format characters
    (bidi overrides, zero-width characters: text that reads otherwise than it is), line and paragraph
    separators, lone surrogates and memory addresses removed, then secret shapes and paths redacted
    as :func:`redact` does. Environment values are *not* matched: the child never sees this
    process's environment, so one in its text was guessed by its author, and redacting it would
    tell the author the guess was right."""
    text = _ADDRESS.sub("<address>", _strip_invisible(text))
    return redact(text, environ={})


def _strip_invisible(text: str) -> str:
    text = _CONTROL.sub("", text)
    if text.isascii():
        return text
    return "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE_CATEGORIES)


def redact(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` with values of ``environ`` (default: this process's environment) of at least six
    characters, secret-shaped tokens and file paths replaced by ``<redacted>`` / ``<path>``."""
    environ = os.environ if environ is None else environ
    for value in sorted({v for v in environ.values() if len(v) >= _MIN_ENV_VALUE}, key=len, reverse=True):
        text = text.replace(value, "<redacted>")
    for pattern in _SECRET_SHAPES:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>" if m.re.groups == 2 else "<redacted>", text)
    return _PATH.sub("<path>", text)
