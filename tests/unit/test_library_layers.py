"""One library layer: stage modules use runtime modules and udfs, never each other; udfs
hold executor code: pure functions over Arrow / pandas / numpy batches that need no Spark
session or DataFrame, no tracking, no Delta and no driver-side runtime module."""
from __future__ import annotations

import ast

from realsyn.jobs import module_graph
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
    assert driver_side({"realsyn.jobs.stage", "mlflow", "delta.tables"}) == {"realsyn.jobs.stage", "mlflow",
                                                                            "delta.tables"}
