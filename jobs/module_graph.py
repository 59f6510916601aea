"""Which project modules a module reaches through its imports, and one hash of their source.

Read from the source (every import statement, also those inside functions), not from what
happens to be loaded, so a lazy import counts as soon as it is written. A stage's code
fingerprint is the hash of its own module and of everything it reaches this way.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import realsyn

PACKAGE = "realsyn"
ROOT = Path(realsyn.__file__).parent   # the folder of the realsyn package (its subpackages may be links)
# The command line and the runner call stages (a stage's main() hands over to the CLI for
# spark-submit); they are not part of what a stage computes, and following them would make
# every stage depend on every other.
RUNNERS = frozenset({"realsyn.jobs.cli", "realsyn.jobs.pipeline"})


def module_file(name: str, root: Path | None = None) -> Path | None:
    """The source file of a realsyn module under root, or None when there is no such module."""
    root = root or ROOT
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py") if len(parts) > 1 else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


# (module, file) -> (its source, the names it imports): every fingerprint walks the same
# files, and parsing them is the cost; a changed source is parsed again.
_PARSED: dict[tuple[str, str], tuple[bytes, frozenset[str]]] = {}


def _imported_names(name: str, path: Path) -> frozenset[str]:
    """Dotted names a module's import statements may load (absolute and relative)."""
    source = path.read_bytes()
    known = _PARSED.get((name, str(path)))
    if known is not None and known[0] == source:
        return known[1]
    names = frozenset(_parse_imports(name, path, source))
    _PARSED[(name, str(path))] = (source, names)
    return names


def _parse_imports(name: str, path: Path, source: bytes) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)   # `from pkg import module`
    return names


def with_parents(name: str) -> list[str]:
    """Importing a.b.c runs a, a.b and a.b.c."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def project_imports(name: str, root: Path | None = None, skip: frozenset[str] = RUNNERS) -> dict[str, Path]:
    """Every realsyn module that importing `name` can run (itself included, `skip` not
    followed) -> its file."""
    found: dict[str, Path] = {}
    todo = with_parents(name)
    while todo:
        current = todo.pop()
        if current in found or (current in skip and current != name):
            continue
        path = module_file(current, root)
        if path is None:
            continue
        found[current] = path
        for imported in _imported_names(current, path):
            if imported.split(".")[0] == PACKAGE:
                todo.extend(m for m in with_parents(imported) if m not in found)
    return found


def source_hash(name: str, root: Path | None = None) -> str:
    """One hash over the source of every realsyn module `name` reaches."""
    h = hashlib.sha256()
    for module, path in sorted(project_imports(name, root).items()):
        h.update(module.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
