"""The EMR steps as written in deploy/emr/steps.json, run by spark-submit on a real standalone
cluster (master + worker on 127.0.0.1) against a real S3 API (moto's server on 127.0.0.1).

Only what names the machine is rewritten: the YARN master becomes the local cluster, the
paths under /opt/realsyn (where deploy/emr/bootstrap.sh installs) become this checkout and
its venv, the bucket becomes the test's, and the EMR-provided S3 connector (EMRFS) is
replaced by Hadoop's S3A. The stage modules, flags and settings run as written, so a
renamed module, flag or key fails here.

By default three steps (the first, the next and the last) run with `--plan`: spark-submit
starts each on the cluster as written, its flags and settings are parsed, its session reaches
the bucket, and it prints what it would do. A first stage run for real on the cluster and
the bucket is the Databricks bundle's test (tests/e2e/test_databricks_bundle.py); every
step's module and flags are checked without a JVM in tests/unit/test_profiles.py; the whole
chain, run for real, is the `slow` test (`make test-slow`): eleven driver JVMs on this
machine take a third of the default suite's time."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import realsyn
from tests.standalone_cluster import StandaloneCluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_CONF = os.path.join(REPO, "conf", "sample.yaml")
STEPS = Path(REPO) / "deploy" / "emr" / "steps.json"
PREFIX = "/opt/realsyn"
BUCKET = "realsyn-deploy"


def step_jars(cfg) -> tuple[str, str]:
    """What the bootstrap puts at /opt/realsyn/realsyn-deps-assembly.jar (`make assembly`'s jar,
    or Delta's own jars where it is not built), and S3A for the class path, where EMR puts
    EMRFS (shipping its 690 MB SDK to each step's executors would copy it every time)."""
    from realsyn.jobs.core import object_store
    from realsyn.jobs.core.session import delta_jars
    jars, packages = object_store.connector_jars(cfg)
    assert not packages, "run `make s3-jars` first"
    return ",".join(delta_jars(cfg)), ":".join(jars)


def local_command(args: list[str], master: str, jars: tuple[str, str], work: Path, sample: Path) -> list[str]:
    assert args[0] == "spark-submit"
    out = [os.path.join(os.path.dirname(sys.executable), "spark-submit")]
    rest = iter(args[1:])
    for a in rest:
        if a == "--master":
            assert next(rest) == "yarn"
            out += ["--master", master]
        elif a == "--jars":
            assert next(rest) == f"{PREFIX}/realsyn-deps-assembly.jar"
            out += ["--jars", jars[0], "--conf", f"spark.driver.extraClassPath={jars[1]}",
                    "--conf", f"spark.executor.extraClassPath={jars[1]}"]
        else:
            out.append(a.replace(f"{PREFIX}/venv/bin/python", sys.executable)
                       .replace(f"{PREFIX}/jobs", os.path.join(REPO, "jobs"))
                       .replace("s3://YOUR-BUCKET", f"s3://{BUCKET}"))
    script = next(i for i, a in enumerate(out) if a.endswith(".py"))
    # Executors are separate processes on the worker: they need this checkout on their path
    # (on EMR the bootstrap installs it on every node instead).
    cluster_only = ["--conf", f"spark.executorEnv.PYTHONPATH={REPO}", "--conf", "spark.driver.host=127.0.0.1"]
    # This machine's folders and a sample-sized run (the sample's settings, few partitions).
    here = ["--work-dir", str(work), "--conf", SAMPLE_CONF, "--set", f"fetch.file_root={sample}",
            "--set", "storage.s3.connector=always", "--set", "spark.progress_bar=false",
            "--set", "spark.conf.spark.sql.shuffle.partitions=4",
            "--set", "spark.conf.spark.databricks.delta.snapshotPartitions=1",
            "--set", "spark.conf.spark.dynamicAllocation.enabled=false"]
    return out[:script] + cluster_only + out[script:] + here


def deploy_setup(tmp_path, s3_server):
    """The sample uploaded where steps.json reads it, the config that reads the step's tables,
    and the environment spark-submit runs in."""
    from tests.conftest import make_config
    sample = tmp_path / "sample"
    made = realsyn("sample", "--out", str(sample), "--docs", "40")
    assert made.returncode == 0, made.stderr
    s3_server.bucket(BUCKET)
    client = s3_server.client()
    for name in sorted(os.listdir(sample / "obelics")):
        client.upload_file(str(sample / "obelics" / name), BUCKET, f"realsyn/obelics/{name}")
    cfg = make_config(tmp_path / "work", f"tables.warehouse=s3://{BUCKET}/realsyn/warehouse",
                      "storage.s3.connector=always")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    return sample, cfg, env


def run_steps(tmp_path, cfg, env, sample, extra, names=None) -> tuple[list[str], dict]:
    """The steps of steps.json (those in `names`, or all) in order on a fresh cluster: (each
    step's stdout, the master's status)."""
    steps = [s for s in json.loads(STEPS.read_text()) if names is None or s["Name"] in names]
    assert names is None or len(steps) == len(names), (names, [s["Name"] for s in steps])
    cluster = StandaloneCluster(tmp_path / "cluster")
    outputs = []
    try:
        cluster.start()
        jars = step_jars(cfg)
        for step in steps:
            cmd = local_command(step["Args"], cluster.master_url, jars, tmp_path / "work", sample) + extra(step)
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200, cwd=REPO)
            assert out.returncode == 0, (step["Name"], out.stdout[-2000:] + out.stderr[-4000:])
            outputs.append(out.stdout)
        apps = cluster.status()
    finally:
        left = cluster.stop()
    assert left == [], f"processes left behind: {left}"
    # The steps ran on the cluster: the master saw one application per step.
    finished = [a for a in apps.get("completedapps", []) + apps.get("activeapps", []) if a.get("name") == "realsyn"]
    assert len(finished) == len(steps), json.dumps(apps)[:2000]
    return outputs, apps


@pytest.mark.cluster
def test_emr_steps_start_on_a_standalone_cluster_and_s3(tmp_path, spark, s3_server):
    from realsyn.jobs.pipeline import stage_names
    sample, cfg, env = deploy_setup(tmp_path, s3_server)
    first, second, last = stage_names()[0], stage_names()[1], stage_names()[-1]
    outputs, _ = run_steps(tmp_path, cfg, env, sample, lambda step: ["--plan"],
                           [f"realsyn {s}" for s in (first, second, last)])
    assert all("realsyn: plan for profile=emr" in o for o in outputs)
    # Each step plans its own stage from what is in the bucket (nothing yet), and writes nothing.
    planned = [next(line for line in o.splitlines() if line.startswith("[")) for o in outputs]
    assert planned[0] == f"[{first}] would run: no finished run yet", planned
    assert planned[1].startswith(f"[{second}] cannot run yet: needs"), planned
    assert planned[2].startswith(f"[{last}] cannot run yet: needs"), planned
    # (the bucket is the session's: other tests keep tables under other prefixes)
    assert not any(k.startswith("realsyn/warehouse/") for k in s3_server.keys(BUCKET))


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(3600)   # eleven driver JVMs, one per stage
def test_emr_steps_run_on_a_standalone_cluster_and_s3(tmp_path, spark, s3_server):
    from realsyn.jobs.pipeline import stage_names
    from realsyn.jobs.core.tables import TableStore
    sample, cfg, env = deploy_setup(tmp_path, s3_server)
    outputs, _ = run_steps(tmp_path, cfg, env, sample, lambda step: [])
    assert all("profile=emr" in o for o in outputs)

    tables = TableStore(spark, cfg)
    assert tables.path("gold.realsyn").startswith(f"s3://{BUCKET}/realsyn/warehouse")
    runs = tables.read("meta.stage_runs").collect()
    assert {r["stage"] for r in runs} == set(stage_names())
    for r in runs:
        for ledger in json.loads(r["ledger"]).values():
            assert ledger["in"] == ledger["kept"] + sum(ledger["rejected"].values()), (r["stage"], ledger)
    assert tables.read("gold.realsyn").count() > 0
    assert tables.read("silver.images").where("status = 'kept'").count() > 0
    assert any(k.startswith("realsyn/warehouse/gold/realsyn/_delta_log/") for k in s3_server.keys(BUCKET))
