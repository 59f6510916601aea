"""A stage's fingerprint covers the source of every project module it imports, and no other.

Works on a copy of the source tree (the real files are never edited). The set of modules a
stage reaches is checked against an independent reader, the standard library's
modulefinder, which scans the compiled bytecode (imports inside functions included).
"""
from __future__ import annotations

import modulefinder
import shutil

import pytest

from realsyn.jobs import module_graph
from realsyn.jobs.config import load_config
from realsyn.jobs.pipeline import all_stages


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the realsyn package with its linked subpackages as plain folders."""
    root = tmp_path_factory.mktemp("src") / "realsyn"
    shutil.copytree(module_graph.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def reached_by_bytecode(module: str, root) -> set[str]:
    finder = modulefinder.ModuleFinder(path=[str(root.parent)], excludes=sorted(module_graph.RUNNERS))
    finder.import_hook(module)
    return {name for name in finder.modules if name.split(".")[0] == module_graph.PACKAGE}


def project_modules(root) -> dict[str, object]:
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_the_import_graph_matches_modulefinder(tree):
    for stage in all_stages():
        module = type(stage).__module__
        assert set(module_graph.project_imports(module, tree)) == reached_by_bytecode(module, tree), stage.name


def test_editing_a_module_changes_exactly_the_stages_that_import_it(tree, monkeypatch):
    monkeypatch.setattr(module_graph, "ROOT", tree)      # the stages hash the copy
    cfg = load_config("local")
    stages = all_stages()
    params = {s.name: s.Params.from_config(cfg) for s in stages}
    reached = {s.name: reached_by_bytecode(type(s).__module__, tree) for s in stages}

    def fingerprints():
        return {s.name: s.fingerprint(params[s.name], {}, {}, {}) for s in stages}

    before = fingerprints()
    wrong = []
    for module, path in sorted(project_modules(tree).items()):
        source = path.read_text()
        path.write_text(source + "\n# an edit\n")
        try:
            after = fingerprints()
        finally:
            path.write_text(source)
        for s in stages:
            if (after[s.name] != before[s.name]) != (module in reached[s.name]):
                wrong.append((s.name, module, module in reached[s.name]))
    assert not wrong, f"(stage, edited module, imported): fingerprint wrong for {wrong}"
    assert fingerprints() == before
    # Not vacuous: each stage imports some udfs module, and no stage imports every module.
    for s in stages:
        assert any(m.startswith("realsyn.udfs.") for m in reached[s.name]) or s.name == "ingest"
        assert len(reached[s.name]) < len(project_modules(tree))


def test_a_lazy_import_inside_a_function_counts(tmp_path):
    root = tmp_path / "realsyn"
    (root / "jobs").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "jobs" / "__init__.py").write_text("")
    (root / "jobs" / "a.py").write_text("def f():\n    from realsyn.jobs import b\n    return b\n")
    (root / "jobs" / "b.py").write_text("from . import c\n")
    (root / "jobs" / "c.py").write_text("X = 1\n")
    (root / "jobs" / "d.py").write_text("X = 2\n")
    assert set(module_graph.project_imports("realsyn.jobs.a", root)) == {
        "realsyn", "realsyn.jobs", "realsyn.jobs.a", "realsyn.jobs.b", "realsyn.jobs.c"}
    before = module_graph.source_hash("realsyn.jobs.a", root)
    (root / "jobs" / "d.py").write_text("X = 3\n")
    assert module_graph.source_hash("realsyn.jobs.a", root) == before
    (root / "jobs" / "c.py").write_text("X = 3\n")
    assert module_graph.source_hash("realsyn.jobs.a", root) != before
