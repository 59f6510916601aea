"""Plays a Databricks job cluster's driver for the bundle's python_wheel_tasks (spark-submitted
by tests/e2e/test_databricks_bundle.py).

On Databricks the runtime's session is up before a task starts (Delta and the object store
configured by the cluster), the catalog's schemas exist (docs/deploy.md creates them), and a
wheel task calls the entry point that the installed wheel declares, with the task's
parameters as its arguments. This script does the same for each task in turn, in one process
with one session, as the tasks of one job cluster share its metastore.

Usage: databricks_driver.py TASKS_JSON  (a list of {"task_key", "parameters"} plus "schemas")
"""
import importlib.metadata
import json
import sys

from pyspark.sql import SparkSession


def main(tasks_file: str) -> int:
    with open(tasks_file) as fh:
        job = json.load(fh)
    spark = SparkSession.builder.getOrCreate()
    for schema in job["schemas"]:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    dist = importlib.metadata.distribution("realsyn")        # the first on sys.path: the wheel
    (entry_point,) = [e for e in dist.entry_points if e.group == "console_scripts" and e.name == "realsyn"]
    entry = entry_point.load()
    import realsyn
    print(f"DRIVER realsyn {dist.version} from {realsyn.__file__}", flush=True)
    for task in job["tasks"]:
        print(f"DRIVER task {task['task_key']}", flush=True)
        sys.argv = ["realsyn", *task["parameters"]]
        try:
            entry()
        except SystemExit as done:
            if done.code:
                print(f"DRIVER task {task['task_key']} failed: {done.code}", flush=True)
                return 1
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
