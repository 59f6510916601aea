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
