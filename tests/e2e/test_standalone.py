"""The whole pipeline via spark-submit on a real standalone cluster (master + worker on 127.0.0.1)."""
import json
import os
import subprocess
import sys

import pytest

from tests.e2e.test_cli import realsyn
from tests.standalone_cluster import StandaloneCluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_CONF = os.path.join(REPO, "conf", "sample.yaml")


def realsyn_out(*args) -> str:
    out = realsyn(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.cluster
def test_pipeline_on_standalone_cluster(tmp_path, spark):
    sample = tmp_path / "sample"
    realsyn_out("sample", "--out", str(sample), "--docs", "40")
    work = tmp_path / "work"
    common = ["--profile", "standalone", "--conf", SAMPLE_CONF, "--set", "spark.progress_bar=false"]
    flags = realsyn_out(*common, "submit-args").split()
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    cluster = StandaloneCluster(tmp_path / "cluster")
    try:
        cluster.start()
        # Executors are separate processes on the worker: they need this checkout on their path
        # (on a real cluster the wheel is installed on every node instead).
        cmd = [os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", cluster.master_url,
               *flags, "--conf", f"spark.executorEnv.PYTHONPATH={REPO}",
               "--conf", "spark.driver.host=127.0.0.1",
               os.path.join(REPO, "jobs", "cli.py"), *common, "--work-dir", str(work),
               "--input", f"{sample}/obelics/*.parquet", "--set", f"fetch.file_root={sample}", "run"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2400, cwd=REPO)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
        apps = cluster.status()
    finally:
        left = cluster.stop()
    assert left == [], f"processes left behind: {left}"

    # The work ran on the cluster: the master saw our application finish with executors.
    finished = [a for a in apps.get("completedapps", []) + apps.get("activeapps", [])
                if a.get("name") == "realsyn"]
    assert finished, json.dumps(apps)[:2000]
    assert "profile=standalone" in out.stdout and "gold.realsyn" in out.stdout

    from realsyn.jobs.pipeline import stage_names
    from realsyn.jobs.tables import TableStore
    from tests.conftest import make_config
    tables = TableStore(spark, make_config(work))
    runs = tables.read("meta.stage_runs").collect()
    assert {r["stage"] for r in runs} == set(stage_names())
    for r in runs:
        for ledger in json.loads(r["ledger"]).values():
            assert ledger["in"] == ledger["kept"] + sum(ledger["rejected"].values()), (r["stage"], ledger)
    assert tables.read("gold.realsyn").count() > 0
    assert tables.read("silver.images").where("status = 'kept'").count() > 0
