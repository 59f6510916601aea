"""Docs that stand alone: every `realsyn.*` dotted name, every repo path and every relative
link written in the Markdown files resolves in this checkout, so a moved module or file
cannot leave a stale pointer behind."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKDOWN = sorted(p for p in REPO.rglob("*.md")
                  if not any(part.startswith(".") or part in ("target", "work", "node_modules")
                             for part in p.relative_to(REPO).parts))
DOTTED = re.compile(r"\brealsyn\.(?:jobs|udfs|schemas)(?:\.\w+)+")
PATH = re.compile(r"(?<![\w./-])((?:jobs|udfs|schemas|benchmarks|tests|conf|deploy|docs|notebooks)/[\w./-]*\w\.(?:py|yaml|md|sh|yml|ipynb))\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def resolves(dotted: str) -> bool:
    """The longest importable prefix, then attributes for the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def references(pattern: re.Pattern, group: int = 0) -> list[tuple[Path, str]]:
    return [(md, m.group(group)) for md in MARKDOWN for m in pattern.finditer(md.read_text())]


def test_there_is_something_to_check():
    assert REPO / "README.md" in MARKDOWN and len(references(DOTTED)) > 5 and len(references(PATH, 1)) > 20


def test_every_dotted_name_resolves():
    bad = sorted({f"{md.relative_to(REPO)}: {name}" for md, name in references(DOTTED) if not resolves(name)})
    assert not bad, "\n".join(bad)


def test_every_repo_path_exists():
    bad = sorted({f"{md.relative_to(REPO)}: {path}" for md, path in references(PATH, 1)
                  if not (REPO / path).exists() and not (md.parent / path).exists()})
    assert not bad, "\n".join(bad)


def test_every_relative_link_resolves():
    bad = []
    for md, target in references(LINK, 1):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not (md.parent / target.split("#")[0]).exists():
            bad.append(f"{md.relative_to(REPO)}: {target}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name, ok", [("realsyn.jobs.embed.Embed", True), ("realsyn.jobs.core.units", True),
                                      ("realsyn.jobs.units", False), ("realsyn.jobs.embed.NoSuchThing", False)])
def test_the_resolver_can_fail(name, ok):
    assert resolves(name) is ok
