"""A stage's fingerprint covers the behaviour of every project module it imports, and no other;
a unit table's work fingerprint covers its declared work code and never the runtime.

Works on a copy of the source tree (the real files are never edited). The set of modules a
stage reaches is checked against an independent reader, the standard library's
modulefinder, which scans the compiled bytecode (imports inside functions included).
"""
from __future__ import annotations

import ast
import modulefinder
import re
import shutil

import pytest

from realsyn.jobs.core import module_graph
from realsyn.jobs.core.config import load_config
from realsyn.jobs.pipeline import all_stages


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of the realsyn package with its linked subpackages as plain folders."""
    root = tmp_path_factory.mktemp("src") / "realsyn"
    shutil.copytree(module_graph.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def reached_by_bytecode(module: str, root) -> set[str]:
    finder = modulefinder.ModuleFinder(path=[str(root.parent)])
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


def no_behaviour_edits(source: str) -> list[str]:
    """Edits that cannot change what runs: a comment (at the top, so every line moves), a
    docstring reworded, blank lines, and the whole module reformatted by ast.unparse (which
    also drops every comment)."""
    edits = ["# an edit\n" + source + "\n\n# another\n", ast.unparse(ast.parse(source)) + "\n"]
    tree = ast.parse(source)
    doc = tree.body[0] if tree.body and module_graph._is_docstring(tree.body[0]) else None
    if doc is not None:
        lines = source.splitlines(keepends=True)
        lines[doc.lineno - 1] = lines[doc.lineno - 1].replace('"""', '"""Reworded. ', 1)
        edits.append("".join(lines))
    return edits


CODE_EDIT = "\n_REALSYN_EDIT = 1\n"   # one statement: what runs changes


def test_only_behaviour_edits_change_fingerprints_and_exactly_the_importers(tree, monkeypatch):
    monkeypatch.setattr(module_graph, "ROOT", tree)      # the stages hash the copy
    cfg = load_config("local")
    stages = all_stages()
    params = {s.name: s.Params.from_config(cfg) for s in stages}
    reached = {s.name: reached_by_bytecode(type(s).__module__, tree) for s in stages}

    def fingerprints(among=stages):
        return {s.name: s.fingerprint(params[s.name], {}, {}, {}) for s in among}

    before = fingerprints()
    wrong = []
    docstrings = 0
    for module, path in sorted(project_modules(tree).items()):
        source = path.read_text()
        edits = no_behaviour_edits(source)
        docstrings += len(edits) == 3
        # Only a stage that reaches the module can see an edit of it; that no other stage
        # does is checked by the code edit below, against every stage.
        importers = [s for s in stages if module in reached[s.name]]
        try:
            for edit in edits:
                path.write_text(edit)
                changed = [s for s, f in fingerprints(importers).items() if f != before[s]]
                if changed:
                    wrong.append(f"{module}: a comment, docstring or format edit changed {changed}")
            path.write_text(source + CODE_EDIT)
            after = fingerprints()
        finally:
            path.write_text(source)
        for s in stages:
            if (after[s.name] != before[s.name]) != (module in reached[s.name]):
                wrong.append(f"{module}: a code edit {'changed' if after[s.name] != before[s.name] else 'missed'} "
                             f"{s.name} (imported: {module in reached[s.name]})")
    assert not wrong, "\n".join(wrong)
    assert fingerprints() == before
    # Not vacuous: most modules have a docstring to reword; each stage imports some udfs
    # module, and no stage imports every module.
    assert docstrings > len(project_modules(tree)) // 2
    for s in stages:
        assert any(m.startswith("realsyn.udfs.") for m in reached[s.name]) or s.name == "ingest"
        assert len(reached[s.name]) < len(project_modules(tree))


def work_code(stages) -> dict[str, tuple[str, ...]]:
    return {f"{s.name}:{table}": modules for s in stages for table, modules in s.work_code.items()}


def test_the_work_code_of_every_unit_table_reaches_no_runtime_module():
    declared = work_code(all_stages())
    assert {"extract_images:silver.image_fetches", "extract_sentences:silver.sentences",
            "embed:silver.image_embeddings", "generate:gold.synthetic", "retrieve:gold.retrievals",
            "cluster:gold.text_centroids"} <= set(declared)
    for name, modules in declared.items():
        for module in modules:
            reached = set(module_graph.project_imports(module))
            assert module_graph.module_file(module) is not None, f"{name}: no module {module}"
            assert reached & module_graph.RUNTIME <= {"realsyn"}, (
                f"{name}: its work code {module} reaches the runtime {sorted(reached & module_graph.RUNTIME)}")


def test_a_code_edit_in_the_runtime_changes_no_work_fingerprint_and_one_in_the_work_code_does(tree):
    declared = work_code(all_stages())
    modules = project_modules(tree)
    runtime = sorted(m for m in module_graph.RUNTIME if m in modules)
    assert {"realsyn.jobs.core.config", "realsyn.jobs.core.tracking", "realsyn.jobs.core.console", "realsyn.jobs.core.redact",
            "realsyn.jobs.core.session", "realsyn.jobs.core.spark_conf_check", "realsyn.jobs.cli",
            "realsyn.jobs.pipeline", "realsyn.jobs.core.stage"} <= set(runtime)

    def hashes():
        return {name: [module_graph.work_code_hash(m, tree) for m in mods] for name, mods in declared.items()}

    before = hashes()
    wrong = []
    for module in sorted(modules):
        path = modules[module]
        source = path.read_text()
        path.write_text(source + CODE_EDIT)
        try:
            after = hashes()
        finally:
            path.write_text(source)
        for name, mods in declared.items():
            reached = set().union(*(module_graph.project_imports(m, tree, skip=module_graph.NOT_WORK) for m in mods))
            if (after[name] != before[name]) != (module in reached):
                wrong.append(f"{module}: {name} {'changed' if after[name] != before[name] else 'unchanged'}")
            if module in runtime and after[name] != before[name]:
                wrong.append(f"runtime {module} changed {name}")
    assert not wrong, "\n".join(wrong)
    assert hashes() == before


def test_every_work_fingerprint_goes_through_the_declared_work_code():
    """No stage hashes code of its own choosing: units.work_fingerprint is called by
    Stage.work_fingerprint alone, with the stage's declared work_code."""
    callers = []
    for path in sorted((module_graph.ROOT / "jobs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "work_fingerprint"):
                callers.append(path.stem)
    assert callers == ["stage"]


def test_docstrings_and_positions_are_not_behaviour_but_constants_names_and_signatures_are():
    def digest(source: str) -> str:
        return module_graph.behaviour(ast.parse(source))

    base = '"""Module."""\nX = 1\n\nclass A:\n    """A."""\n    def f(self, a):\n        """F."""\n        return a + X\n'
    same = ['X = 1\nclass A:\n    def f(self, a):\n        return a + X  # a comment\n',
            '"""Other."""\n\n\nX = 1\nclass A:\n    """B."""\n    def f(self, a):\n        return (a +\n                X)\n']
    different = [base.replace("X = 1", "X = 2"), base.replace("def f(self, a)", "def f(self, a, b=0)"),
                 base.replace("a + X", "a - X"), base.replace("return a + X", "y = 'F.'\n        return a + X")]
    assert all(digest(s) == digest(base) for s in same)
    assert all(digest(d) != digest(base) for d in different)


def small_tree(tmp_path, modules: dict[str, str]):
    """A realsyn package with a jobs/ package holding `modules` (name -> source)."""
    root = tmp_path / "realsyn"
    (root / "jobs").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "jobs" / "__init__.py").write_text("")
    for name, source in modules.items():
        (root / "jobs" / f"{name}.py").write_text(source)
    return root


def test_a_lazy_import_inside_a_function_counts(tmp_path):
    root = small_tree(tmp_path, {"a": "def f():\n    from realsyn.jobs import b\n    return b\n",
                                 "b": "from . import c\n", "c": "X = 1\n", "d": "X = 2\n"})
    assert set(module_graph.project_imports("realsyn.jobs.a", root)) == {
        "realsyn", "realsyn.jobs", "realsyn.jobs.a", "realsyn.jobs.b", "realsyn.jobs.c"}
    before = module_graph.source_hash("realsyn.jobs.a", root)
    (root / "jobs" / "d.py").write_text("X = 3\n")
    assert module_graph.source_hash("realsyn.jobs.a", root) == before
    (root / "jobs" / "c.py").write_text("X = 3\n")
    assert module_graph.source_hash("realsyn.jobs.a", root) != before


def moved(root, old: str, new: str) -> None:
    """Move module `old` to `new` in the tree at root and rewrite every import of it (both
    `import a.b.old` / `from a.b.old import x` and `from a.b import old`)."""
    old_path, new_path = module_graph.module_file(old, root), root.joinpath(*new.split(".")[1:]).with_suffix(".py")
    new_path.parent.mkdir(parents=True, exist_ok=True)
    init = new_path.parent / "__init__.py"
    if not init.exists():
        init.write_text('"""A new package."""\n')
    old_path.rename(new_path)
    (old_pkg, _, old_leaf), (new_pkg, _, new_leaf) = old.rpartition("."), new.rpartition(".")
    for path in root.rglob("*.py"):
        source = path.read_text()
        edited = re.sub(rf"\b{re.escape(old)}\b", new, source)
        edited = re.sub(rf"from {re.escape(old_pkg)} import {old_leaf}\b", f"from {new_pkg} import {new_leaf} as {old_leaf}",
                        edited)
        if edited != source:
            path.write_text(edited)


def test_moving_or_renaming_a_module_changes_no_fingerprint(tmp_path):
    """Content addressing: a module's place and name are not behaviour (the layout can change
    without recomputing a row), while importing another module's name is."""
    root = tmp_path / "realsyn"
    shutil.copytree(module_graph.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    stages = all_stages()
    declared = work_code(stages)

    def hashes(renamed=lambda m: m):
        return ({s.name: module_graph.source_hash(type(s).__module__, root) for s in stages},
                {name: [module_graph.work_code_hash(renamed(m), root) for m in mods] for name, mods in declared.items()})

    before = hashes()
    moves = {"realsyn.udfs.vector_codec": "realsyn.udfs.codecs.vectors"}     # work code of many tables
    moved(root, "realsyn.udfs.vector_codec", "realsyn.udfs.codecs.vectors")
    assert hashes(lambda m: moves.get(m, m)) == before
    # Modules whose names are also written as text (the runtime's list in module_graph, a
    # stage's declared work code): the stage fingerprints see that text, the rows do not.
    moves |= {"realsyn.jobs.core.units": "realsyn.jobs.units",                      # the runtime
              "realsyn.jobs.lib.document_split": "realsyn.jobs.split.sentences"}    # declared work code itself
    for old, new in list(moves.items())[1:]:
        moved(root, old, new)
    assert hashes(lambda m: moves.get(m, m))[1] == before[1]
    # Not vacuous: the moved modules are reached, and an edit in one still counts.
    assert any("realsyn.udfs.codecs.vectors" in module_graph.project_imports(type(s).__module__, root) for s in stages)
    vectors = root / "udfs" / "codecs" / "vectors.py"
    vectors.write_text(vectors.read_text() + CODE_EDIT)
    assert hashes(lambda m: moves.get(m, m))[1]["embed:silver.image_embeddings"] != before[1]["embed:silver.image_embeddings"]


def test_the_address_of_an_import_is_what_it_imports(tmp_path):
    root = small_tree(tmp_path, {"b": "X = 1\nY = 1\n", "c": "X = 1\nY = 2\n"})
    a = root / "jobs" / "a.py"
    digests = {}
    for text in ("from realsyn.jobs.b import X\n", "from .b import X\n", "from realsyn.jobs import b\nX = b.X\n",
                 "from . import b\nX = b.X\n", "from realsyn.jobs.b import Y as X\n", "from realsyn.jobs.c import X\n"):
        a.write_text(text)
        digests[text] = module_graph.source_hash("realsyn.jobs.a", root)
    values = list(digests.values())
    assert values[0] == values[1] and values[2] == values[3]      # relative or absolute: one import
    assert len({values[0], values[2], values[4], values[5]}) == 4  # another name, form or module: another hash


def test_where_a_parameter_is_read_from_is_not_behaviour_but_its_default_is():
    """udfs/declared.py's declarations (a field's key, a class's SECTION, kw_only) say where
    the driver reads a value, which every fingerprint holds as a parameter: declaring a spec
    another way recomputes no row; a default or a field of its own does."""
    def digest(source: str) -> str:
        tree = ast.parse(source)
        module_graph.strip_declarations(tree, "realsyn.udfs")
        return module_graph.behaviour(tree)

    base = ("from dataclasses import dataclass\n\n@dataclass(frozen=True)\nclass Spec:\n"
            "    seed: int\n    threads: int = 1\n")
    same = [base.replace("from dataclasses import dataclass\n",
                         "from dataclasses import dataclass\nfrom realsyn.udfs import declared as d\n")
                .replace("frozen=True)", "frozen=True, kw_only=True)")
                .replace("    seed: int\n", '    SECTION = "run"\n    seed: int = d.setting("run.seed")\n')
                .replace("threads: int = 1", 'threads: int = d.setting("models.torch_threads", default=1)'),
            base.replace("from dataclasses import dataclass\n",
                         "from dataclasses import dataclass\nfrom realsyn.udfs.declared import nested, preset\n")
                .replace("seed: int\n", 'seed: int = preset("clip")\n')]
    different = [base.replace("threads: int = 1", "threads: int = 2"),
                 base.replace("threads: int = 1", "threads: int = 1\n    other: int = 0"),
                 base.replace("frozen=True", "frozen=False")]
    assert all(digest(s) == digest(base) for s in same)
    assert all(digest(d) != digest(base) for d in different)
