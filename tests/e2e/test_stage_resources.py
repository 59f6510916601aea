"""A stage's declared task resources reach Spark's scheduler on a real standalone cluster:
a mapInArrow given the context's ResourceProfile runs its tasks with the declared cpus
(TaskContext.cpus()), one without it with the session's default. The driver runs in its
own process (this one holds the tests' local session)."""
import json
import os
import subprocess
import sys

import pytest

from tests.standalone_cluster import StandaloneCluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DRIVER = r"""
import json, sys
import pyarrow as pa
from pyspark.sql import SparkSession
from realsyn.jobs.retrieve import Retrieve
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context

def cpus(batches):
    from pyspark import TaskContext
    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.array([TaskContext.get().cpus()] * batch.num_rows, pa.int32())],
                                         names=["cpus"])

spark = (SparkSession.builder.master(sys.argv[1]).appName("realsyn-resources")
         .config("spark.executor.cores", "2").config("spark.driver.host", "127.0.0.1")
         .config("spark.ui.enabled", "false").getOrCreate())
ctx = Context(spark=spark, _store=None, tracker=None, stage=Retrieve(), resources=TaskResources(cpus=2))
rows = spark.range(0, 8, 1, 4)
out = {"profile": ctx.task_profile is not None,
       "with": sorted({r.cpus for r in rows.mapInArrow(cpus, "cpus int", profile=ctx.task_profile).collect()}),
       "without": sorted({r.cpus for r in rows.mapInArrow(cpus, "cpus int").collect()})}
print("RESULT " + json.dumps(out))
spark.stop()
"""


@pytest.mark.cluster
def test_declared_task_cpus_run_under_a_resource_profile(tmp_path, monkeypatch):
    for var in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):   # spark-class finds Spark through them
        monkeypatch.setenv(var, sys.executable)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": REPO}
    cluster = StandaloneCluster(tmp_path / "cluster", cores=2, memory="2g")
    try:
        cluster.start()
        out = subprocess.run([sys.executable, "-c", DRIVER, cluster.master_url], capture_output=True, text=True,
                             env=env, timeout=600, cwd=REPO)
    finally:
        left = cluster.stop()
    assert left == [], f"processes left behind: {left}"
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result == {"profile": True, "with": [2], "without": [1]}, result
