"""Which project modules a module reaches through its imports, and one hash of what they do.

Read from the source (every import statement, also those inside functions), not from what
happens to be loaded, so a lazy import counts as soon as it is written. A stage's code
fingerprint is the hash of its own module and of everything it reaches this way.

The hash is taken over each module's syntax tree with docstrings removed (comments,
blank lines and formatting never reach the tree), so an edit that cannot change what runs
changes no fingerprint, while any statement, constant, name or signature does.
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
# The runtime: how a run is configured, scheduled, committed, tracked and reported. It
# decides whether and where a row is computed, never what the row holds, so no work
# fingerprint (jobs/units.py) may reach it: tests/unit/test_code_fingerprint.py checks that
# the code each unit table declares reaches none of these (the package root holds only the
# version string).
RUNTIME = RUNNERS | frozenset({
    "realsyn", "realsyn.jobs.config", "realsyn.jobs.console", "realsyn.jobs.tracking", "realsyn.jobs.redact",
    "realsyn.jobs.session", "realsyn.jobs.spark_conf_check", "realsyn.jobs.stage", "realsyn.jobs.tables",
    "realsyn.jobs.units", "realsyn.jobs.plan", "realsyn.jobs.resources", "realsyn.jobs.object_store",
    "realsyn.jobs.module_graph", "realsyn.jobs.models", "realsyn.jobs.refetch", "realsyn.jobs.input_files",
})


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


# (module, file) -> (its source, the names it imports, the hash of its behaviour): every
# fingerprint walks the same files, and parsing them is the cost; a changed source is
# parsed again.
_PARSED: dict[tuple[str, str], tuple[bytes, frozenset[str], str]] = {}


def _parsed(name: str, path: Path) -> tuple[frozenset[str], str]:
    source = path.read_bytes()
    known = _PARSED.get((name, str(path)))
    if known is not None and known[0] == source:
        return known[1], known[2]
    tree = ast.parse(source, str(path))
    names = frozenset(_parse_imports(name, path, tree))
    digest = hashlib.sha256(behaviour(tree).encode()).hexdigest()
    _PARSED[(name, str(path))] = (source, names, digest)
    return names, digest


def _imported_names(name: str, path: Path) -> frozenset[str]:
    """Dotted names a module's import statements may load (absolute and relative)."""
    return _parsed(name, path)[0]


def behaviour_hash(name: str, path: Path) -> str:
    """Hash of what a module does: its syntax tree without docstrings."""
    return _parsed(name, path)[1]


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def behaviour(tree: ast.Module) -> str:
    """The tree as text, with the docstring of the module and of every class and function
    dropped (a string statement first in a body: documentation, never run for a value).
    Positions are left out, so moving code down a line changes nothing."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and _is_docstring(body[0]):
                node.body = body[1:]
    return ast.dump(tree, annotate_fields=True, include_attributes=False)


def _parse_imports(name: str, path: Path, tree: ast.Module) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
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
    """One hash over the behaviour of every realsyn module `name` reaches (docstrings,
    comments and formatting excluded)."""
    h = hashlib.sha256()
    for module, path in sorted(project_imports(name, root).items()):
        h.update(module.encode() + b"\0" + behaviour_hash(module, path).encode() + b"\0")
    return h.hexdigest()[:16]


def work_code_hash(name: str, root: Path | None = None) -> str:
    """source_hash of the code that computes a unit table's rows: the runtime is not followed
    (the test of the layers checks that no work code reaches it)."""
    h = hashlib.sha256()
    for module, path in sorted(project_imports(name, root, skip=RUNTIME).items()):
        h.update(module.encode() + b"\0" + behaviour_hash(module, path).encode() + b"\0")
    return h.hexdigest()[:16]
