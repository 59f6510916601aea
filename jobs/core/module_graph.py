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
import copy
import hashlib
from pathlib import Path

import realsyn

PACKAGE = "realsyn"
ROOT = Path(realsyn.__file__).parent   # the folder of the realsyn package (its subpackages may be links)
# The command line and the runner, which call the stages. No stage imports them (a stage's
# spark-submit entry point, Stage.main, loads the CLI by name), so no fingerprint follows them.
RUNNERS = frozenset({"realsyn.jobs.cli", "realsyn.jobs.pipeline"})
# The runtime: jobs/core/, every module of it (how a run is configured, scheduled, committed,
# tracked and reported), the runners and the package root (which holds only the version). It
# decides whether and where a row is computed, never what the row holds, so no work
# fingerprint (jobs/core/units.py) may reach it: tests/unit/test_code_fingerprint.py checks
# that the code each unit table declares reaches none of these.
CORE = f"{PACKAGE}.jobs.core"
RUNTIME = RUNNERS | {PACKAGE, CORE} | frozenset(
    f"{CORE}.{path.stem}" for path in (ROOT / "jobs" / "core").glob("*.py") if path.stem != "__init__")


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


# (module, file) -> (its source, the names it imports, its tree without docstrings): every
# fingerprint walks the same files, and parsing them is the cost; a changed source is
# parsed again.
_PARSED: dict[tuple[str, str], tuple[bytes, frozenset[str], ast.Module]] = {}


def _parsed(name: str, path: Path) -> tuple[frozenset[str], ast.Module]:
    source = path.read_bytes()
    known = _PARSED.get((name, str(path)))
    if known is not None and known[0] == source:
        return known[1], known[2]
    tree = ast.parse(source, str(path))
    names = frozenset(_parse_imports(name, path, tree))
    strip_docstrings(tree)
    strip_declarations(tree, _package(name, path))
    _PARSED[(name, str(path))] = (source, names, tree)
    return names, tree


def _imported_names(name: str, path: Path) -> frozenset[str]:
    """Dotted names a module's import statements may load (absolute and relative)."""
    return _parsed(name, path)[0]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def strip_docstrings(tree: ast.AST) -> ast.AST:
    """Drop the docstring of the module and of every class and function (a string statement
    first in a body: documentation, never run for a value)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and _is_docstring(body[0]):
                node.body = body[1:]
    return tree


# Where a parameter's value comes from (udfs/declared.py: a field's declaration, a class's
# SECTION, a dataclass's kw_only) is the driver's business: the values themselves are in
# every fingerprint's parameters. So declaring a parameter another way changes no hash.
DECLARED = f"{PACKAGE}.udfs.declared"
DECLARATIONS = frozenset({"setting", "converted", "preset", "weights", "nested"})
NOT_WORK = RUNTIME | {DECLARED}   # what no work fingerprint follows


def strip_declarations(tree: ast.Module, package: str) -> ast.Module:
    """Drop the imports of udfs/declared.py, every `SECTION = ...` of a class, the kw_only
    of a dataclass decorator, and turn each declared field into a plain one (its default
    kept)."""
    helpers: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _from_base(package, node)
            if base == DECLARED:
                helpers.update(a.asname or a.name for a in node.names)
            modules.update(a.asname or a.name for a in node.names if f"{base}.{a.name}" == DECLARED)

    def declares(value: ast.expr | None) -> bool:
        if not isinstance(value, ast.Call):
            return False
        f = value.func
        return ((isinstance(f, ast.Name) and f.id in helpers) or
                (isinstance(f, ast.Attribute) and f.attr in DECLARATIONS
                 and isinstance(f.value, ast.Name) and f.value.id in modules))

    def is_declared_import(stmt: ast.stmt) -> bool:
        return isinstance(stmt, ast.ImportFrom) and (
            _from_base(package, stmt) == DECLARED
            or all(f"{_from_base(package, stmt)}.{a.name}" == DECLARED for a in stmt.names))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [s for s in body if not is_declared_import(s)] or body   # type: ignore[attr-defined]
        if not isinstance(node, ast.ClassDef):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call):
                deco.keywords = [k for k in deco.keywords if k.arg != "kw_only"]
        kept = []
        for stmt in node.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == "SECTION"):
                continue
            if isinstance(stmt, ast.AnnAssign) and declares(stmt.value):
                assert isinstance(stmt.value, ast.Call)
                stmt.value = next((k.value for k in stmt.value.keywords if k.arg == "default"), None)
            kept.append(stmt)
        node.body = kept
    return tree


def behaviour(tree: ast.Module) -> str:
    """The tree as text, with the docstring of the module and of every class and function
    dropped. Positions are left out, so moving code down a line changes nothing."""
    return ast.dump(strip_docstrings(tree), annotate_fields=True, include_attributes=False)


def _package(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _from_base(package: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` statement reads from."""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        return ".".join(anchor + ([node.module] if node.module else []))
    return node.module or ""


def _parse_imports(name: str, path: Path, tree: ast.Module) -> set[str]:
    package = _package(name, path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(package, node)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)   # `from pkg import module`
    return names


def with_parents(name: str) -> list[str]:
    """Importing a.b.c runs a, a.b and a.b.c."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def project_imports(name: str, root: Path | None = None, skip: frozenset[str] = frozenset()) -> dict[str, Path]:
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


# Content addressing. A module's hash does not name the project modules it imports: each
# import of one is written as the address of what that module holds, so moving or renaming
# a module (and every import of it) changes no fingerprint, while importing another module,
# or a different name from it, does. A module's own address writes its project imports as
# "@" (what they hold enters through their own hashes); modules not followed (`skip`: the
# runners, the runtime) and names that are no module are addressed by name.


_DIGESTS: dict[tuple, str] = {}   # the tree dumps, the cost: cached by source and addresses


class _ContentHasher:
    """The addresses and digests of one hash: every file is looked up once per hash."""

    def __init__(self, root: Path, skip: frozenset[str]):
        self.root, self.skip = root, skip
        self.files: dict[str, Path | None] = {}
        self.addresses: dict[str, str | None] = {}

    def file(self, module: str) -> Path | None:
        if module not in self.files:
            self.files[module] = module_file(module, self.root)
        return self.files[module]

    def address(self, module: str, level: int) -> str | None:
        """`module`'s address at `level` (0: blank, 1: its own content), or None for a name
        that is no module."""
        if module in self.skip:
            return module
        if self.file(module) is None:
            return None
        if level == 0:
            return "@"
        if module not in self.addresses:
            self.addresses[module] = "@" + self.digest(module, 0)[:16]
        return self.addresses[module]

    def digest(self, module: str, level: int) -> str:
        """The module's tree with each project import written as its address at `level`."""
        path = self.file(module)
        assert path is not None
        imported = {m: self.address(m, level) for m in _imported_names(module, path) if _ours(m)}
        key = (module, str(path), self.skip, level, path.read_bytes(), tuple(sorted(imported.items(), key=str)))
        if key not in _DIGESTS:
            def address(name: str, otherwise: str | None = None) -> str:
                found = imported.get(name) if name in imported else self.address(name, level)
                return found if found is not None else (otherwise or name)
            _DIGESTS[key] = _addressed(module, path, address)
        return _DIGESTS[key]


def _addressed(name: str, path: Path, address) -> str:
    """A module's tree as text with each project import written as `address(module)`."""
    tree = copy.deepcopy(_parsed(name, path)[1])
    package = _package(name, path)

    class Rewrite(ast.NodeTransformer):
        def visit_Import(self, node: ast.Import):
            return [ast.Import(names=[ast.alias(name=address(a.name) if _ours(a.name) else a.name,
                                                asname=a.asname)]) for a in node.names]

        def visit_ImportFrom(self, node: ast.ImportFrom):
            base = _from_base(package, node)
            if not _ours(base):
                return node
            return [ast.Import(names=[ast.alias(name=address(f"{base}.{a.name}", f"{address(base)}:{a.name}"),
                                                asname=a.asname or a.name)]) for a in node.names]

    return _sha(ast.dump(Rewrite().visit(tree), annotate_fields=True, include_attributes=False))


def _ours(module: str) -> bool:
    return module.split(".")[0] == PACKAGE


def content_hash(name: str, root: Path | None = None, skip: frozenset[str] = frozenset()) -> str:
    """One hash over the behaviour of every realsyn module `name` reaches (`skip` not
    followed): docstrings, comments, formatting and the modules' names and places excluded.
    A module with no statements (a package's docstring) adds nothing."""
    root = root or ROOT
    hasher = _ContentHasher(root, skip)
    hasher.files.update(project_imports(name, root, skip))
    digests = sorted(hasher.digest(module, 1) for module, path in hasher.files.copy().items()
                     if path is not None and _parsed(module, path)[1].body)
    return _sha("\0".join(digests))[:16]


def source_hash(name: str, root: Path | None = None) -> str:
    """content_hash of everything a stage module reaches, the runtime included."""
    return content_hash(name, root)


def work_code_hash(name: str, root: Path | None = None) -> str:
    """content_hash of the code that computes a unit table's rows: the runtime is not followed
    (the test of the layers checks that no work code reaches it), nor udfs/declared.py, whose
    declarations strip_declarations leaves out of every tree."""
    return content_hash(name, root, skip=NOT_WORK)
