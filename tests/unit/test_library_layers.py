"""The layers, by folder (README "Layout"): udfs hold executor code, pure functions over
Arrow / pandas / numpy batches that need no Spark session or DataFrame, no tracking, no Delta
and no driver-side module; jobs/core is the runtime and knows no stage; jobs/lib holds the
stages' driver-side building blocks; a stage uses core, lib and udfs, never another stage,
the test world, training or the corpora; only the runner lists the stages."""
from __future__ import annotations

import ast

from realsyn.jobs.core import module_graph
from realsyn.jobs.pipeline import all_stages

# Modules (and their submodules) a udfs module never imports.
DRIVER_ONLY = ("mlflow", "delta", "pyspark", "realsyn.jobs")
# All a udfs module may take from pyspark: the running task's context (partition id,
# assigned resources); nothing that reaches the session, the SparkContext or a DataFrame.
EXECUTOR_PYSPARK = {"pyspark.TaskContext", "pyspark.taskcontext.TaskContext"}


def test_no_stage_module_imports_another():
    stage_modules = {type(s).__module__ for s in all_stages()}
    for module in stage_modules:
        others = set(module_graph.project_imports(module)) & (stage_modules - {module})
        assert not others, f"{module} imports the stage module(s) {sorted(others)}"


def imported(path) -> set[str]:
    """Every module a file imports (`import m`), anywhere in it, and `m.name` for each name
    it takes with `from m import name` (a name may be a submodule)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def driver_side(names: set[str]) -> set[str]:
    return {n for n in names if n not in EXECUTOR_PYSPARK
            and any(n == d or n.startswith(d + ".") for d in DRIVER_ONLY)}


def test_udfs_import_no_spark_session_dataframe_tracking_or_delta():
    udfs = module_graph.ROOT / "udfs"
    for path in sorted(udfs.glob("*.py")):
        bad = driver_side(imported(path))
        assert not bad, f"realsyn.udfs.{path.stem} imports driver-side {sorted(bad)}"


def test_the_layer_check_catches_driver_imports():
    assert driver_side({"pyspark.TaskContext", "pyspark.taskcontext.TaskContext", "numpy"}) == set()
    assert driver_side({"pyspark.sql.DataFrame"}) == {"pyspark.sql.DataFrame"}
    assert driver_side({"pyspark.SparkContext", "pyspark"}) == {"pyspark.SparkContext", "pyspark"}
    assert driver_side({"realsyn.jobs.core.stage", "mlflow", "delta.tables"}) == {
        "realsyn.jobs.core.stage", "mlflow", "delta.tables"}


RUNNERS = {"cli", "pipeline"}
# role -> the roles whose modules it may import (a package's own __init__ always).
MAY_IMPORT = {
    "schemas": {"schemas"},
    "udfs": {"udfs"},
    "core": {"core", "udfs", "schemas"},
    "lib": {"lib", "core", "udfs", "schemas"},
    "stage": {"lib", "core", "udfs", "schemas"},   # spark-submit's entry point loads the CLI by name
    "corpora": {"corpora", "udfs"},
    "world": {"world", "corpora", "udfs"},
    "training": {"training", "world", "core", "udfs"},
    "checks": {"checks", "stage", "core", "udfs", "schemas"},   # the stages' own parameter classes
    "runner": {"runner", "stage", "checks", "core", "lib", "corpora", "world", "training", "udfs", "schemas"},
}


def role(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 3:
        return "package"
    if parts[1] != "jobs":
        return parts[1]
    if len(parts) == 3 and not (module_graph.ROOT / "jobs" / parts[2]).is_dir():
        return "runner" if parts[2] in RUNNERS else "stage"
    return parts[2]


def project_modules() -> dict[str, object]:
    out = {}
    for folder in ("jobs", "udfs", "schemas"):
        for path in (module_graph.ROOT / folder).rglob("*.py"):
            parts = path.relative_to(module_graph.ROOT.parent).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_every_module_has_a_role_and_imports_only_what_its_role_may():
    modules = project_modules()
    wrong = []
    for module, path in sorted(modules.items()):
        mine = role(module)
        if mine == "package":
            continue
        assert mine in MAY_IMPORT, f"{module}: no role (a new folder belongs in MAY_IMPORT and README's Layout)"
        for name in module_graph._imported_names(module, path):
            if name in modules and name != module and modules[name].name != "__init__.py":
                if role(name) not in MAY_IMPORT[mine]:
                    wrong.append(f"{module} ({mine}) imports {name} ({role(name)})")
    assert not wrong, "\n".join(wrong)


def test_the_top_of_jobs_holds_only_stages_and_the_runner():
    stages = {type(s).__module__ for s in all_stages()}
    top = {m for m, path in project_modules().items() if role(m) in ("stage", "runner") and path.name != "__init__.py"}
    assert top == stages | {f"realsyn.jobs.{r}" for r in RUNNERS}


def test_no_stage_reaches_the_world_training_the_corpora_or_another_stage():
    """What a stage's fingerprint covers (the runners not followed) holds no test world and
    no training code: a stage computes the same rows whatever the tests do."""
    stages = {type(s).__module__ for s in all_stages()}
    for module in stages:
        reached = set(module_graph.project_imports(module)) - {module}
        bad = {m for m in reached if role(m) in ("world", "training", "corpora", "checks") or m in stages}
        assert not bad, f"{module} reaches {sorted(bad)}"


def test_the_role_check_can_fail():
    assert role("realsyn.jobs.world.truth") == "world" and role("realsyn.jobs.embed") == "stage"
    assert role("realsyn.jobs.pipeline") == "runner" and role("realsyn.udfs.fetch") == "udfs"
    assert "world" not in MAY_IMPORT["stage"] and "stage" not in MAY_IMPORT["core"]


# Spark calls whose first argument is the code that runs in the Python workers.
EXECUTOR_CALLS = {"mapInArrow", "mapInPandas", "applyInArrow", "applyInPandas", "pandas_udf", "mapPartitions"}


def executor_bodies_defined_here(source: str) -> list[str]:
    """`line: call(name)` for each executor body a module defines itself: a function defined
    in the module (at any depth) or a lambda passed to an EXECUTOR_CALLS call, or any
    pandas_udf decorator. A body imported from udfs, or one the caller passes in, is fine."""
    tree = ast.parse(source)
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    imported_from: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported_from.update({a.asname or a.name: node.module for a in node.names})
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bad += [f"{node.lineno}: @{ast.unparse(d)} {node.name}" for d in node.decorator_list
                    if "pandas_udf" in ast.unparse(d)]
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in EXECUTOR_CALLS and node.args):
            continue
        body = node.args[0]
        fn = body.func if isinstance(body, ast.Call) else body
        root = fn
        while isinstance(root, ast.Attribute):
            root = root.value
        name = root.id if isinstance(root, ast.Name) else None
        from_jobs = name in imported_from and not imported_from[name].startswith("realsyn.udfs")
        if isinstance(fn, ast.Lambda) or (name in defined and name not in imported_from) or from_jobs:
            bad.append(f"{node.lineno}: {node.func.attr}({ast.unparse(fn)})")
    return bad


def test_every_executor_body_is_defined_in_udfs():
    """Code that runs in the Python workers lives in udfs/ (it imports no driver module); a
    jobs/ module only wires it into a DataFrame."""
    jobs = module_graph.ROOT / "jobs"
    found = {str(p.relative_to(jobs)): executor_bodies_defined_here(p.read_text()) for p in sorted(jobs.rglob("*.py"))}
    assert not {p: b for p, b in found.items() if b}


def test_the_executor_body_check_can_fail():
    source = ("from pyspark.sql import functions as F\nfrom realsyn.udfs.fetch_rows import fetch_fn\n"
              "from realsyn.jobs.lib.x import helper\n"
              "def f(df, given):\n"
              "    def run(batches):\n        yield from batches\n"
              "    @F.pandas_udf('double')\n    def g(s):\n        return s\n"
              "    df.mapInPandas(run, 'a int')\n    df.mapInArrow(lambda b: b, 'a int')\n"
              "    df.mapInPandas(helper(1), 'a int')\n"
              "    df.mapInPandas(fetch_fn(1), 'a int')\n    df.mapInArrow(given, 'a int')\n")
    bad = executor_bodies_defined_here(source)
    assert len(bad) == 4 and "mapInPandas(run)" in bad[1] + bad[2] + bad[3] and "pandas_udf" in bad[0], bad
