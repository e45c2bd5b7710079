"""The README points only at files that exist in this repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_link_resolves_inside_the_repository():
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", README) if not t.startswith(("http://", "https://", "#"))]
    assert links, "the README has relative links to check"
    for target in links:
        path = (ROOT / target).resolve()
        assert ROOT in path.parents and path.exists(), target


def test_every_named_repository_path_exists():
    named = set(re.findall(r"`((?:docs/|scripts/|configs/|morec/|tests/|\.\./)[\w./<>-]*)", README))
    assert named
    for text in named:
        path = (ROOT / text.rstrip("/.")).resolve()
        assert ROOT in path.parents and path.exists(), text
