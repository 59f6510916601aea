"""The Databricks bundle's tasks as written in deploy/databricks/databricks.yml: the wheel built
by the bundle's own artifact command, installed where nothing else is importable, and each
task's entry point called with its parameters by a driver playing the job cluster's
(tests/databricks_driver.py), spark-submitted to a real standalone cluster on 127.0.0.1, its
catalog's managed tables stored in a real S3 API (moto's server on 127.0.0.1).

Only what names the machine is rewritten: the volumes become this test's folder and bucket,
the metastore is Spark's own (`spark_catalog.` where Unity Catalog has `main.`), MLflow is the
local store, and the runtime's built-in Delta and S3 connector are the pinned jars. So a
wheel that misses a module or a config file, a renamed flag or key, or a stage that cannot
run on catalog tables fails here.

By default the first task runs for real and the rest with `--plan`, as in the EMR test; the
whole job for real is the `slow` test (`make test-slow`)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_standalone import BUCKET, SAMPLE_CONF, deploy_setup, step_jars
from tests.standalone_cluster import StandaloneCluster

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "deploy" / "databricks" / "databricks.yml"
DRIVER = REPO / "tests" / "databricks_driver.py"
CATALOG = "spark_catalog."
MANAGED = f"s3a://{BUCKET}/realsyn/managed"


def build_wheel(bundle: dict, out: Path) -> Path:
    """The bundle's artifact build, run where the bundle runs it (its `path`), into `out`.
    Build isolation is off: it would fetch setuptools from the package index (the venv has it)."""
    artifact = bundle["artifacts"]["realsyn_wheel"]
    cmd = artifact["build"].split()
    assert cmd[:3] == ["python", "-m", "pip"] and "--wheel-dir" in cmd, cmd
    cmd[0] = sys.executable
    cmd[cmd.index("--wheel-dir") + 1] = str(out)
    cwd = (BUNDLE.parent / artifact["path"]).resolve()
    # setuptools stages the files in <path>/build: a stale copy would put deleted modules in the wheel.
    shutil.rmtree(cwd / "build", ignore_errors=True)
    try:
        made = subprocess.run(cmd + ["--no-build-isolation", "-q"], cwd=cwd, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(cwd / "build", ignore_errors=True)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    return wheel


def job_tasks(bundle: dict, work: Path, sample: Path, extra) -> list[dict]:
    """Each task's parameters with the bundle's variables filled in for this machine, and the
    settings of a sample-sized run on it."""
    variables = {"work_dir": str(work), "input": f"s3://{BUCKET}/realsyn/obelics/*.parquet"}
    here = ["--conf", SAMPLE_CONF, "--set", f"fetch.file_root={sample}",
            "--set", f"tables.catalog_prefix={CATALOG}", "--set", "mlflow.tracking_uri="]
    tasks = []
    for task in bundle["resources"]["jobs"]["realsyn_pipeline"]["tasks"]:
        params = list(task["python_wheel_task"]["parameters"])
        for name, value in variables.items():
            params = [p.replace("${var.%s}" % name, value) for p in params]
        assert not any("${" in p for p in params), params
        tasks.append({"task_key": task["task_key"], "parameters": params + here + extra(task)})
    return tasks


def runtime_args(cfg, jars: tuple[str, str], site: Path) -> list[str]:
    """What the Databricks runtime gives every task's session: Delta, the object store, a
    metastore whose managed tables live in the bucket, and the wheel on every node."""
    from realsyn.jobs.core.object_store import hadoop_settings
    conf = {"spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.warehouse.dir": MANAGED,
            "spark.driver.extraClassPath": jars[1], "spark.executor.extraClassPath": jars[1],
            "spark.executorEnv.PYTHONPATH": str(site), "spark.driver.host": "127.0.0.1",
            "spark.sql.shuffle.partitions": "4", "spark.databricks.delta.snapshotPartitions": "1",
            "spark.ui.showConsoleProgress": "false",
            **{f"spark.hadoop.{k}": v for k, v in hadoop_settings(cfg).items()}}
    return ["--jars", jars[0]] + [a for k, v in conf.items() for a in ("--conf", f"{k}={v}")]


def run_job(tmp_path, s3_server, extra) -> tuple[dict[str, str], Path]:
    """The whole job on a fresh cluster: (each task's output, where the wheel is installed)."""
    from realsyn.schemas.registry import REGISTRY
    bundle = yaml.safe_load(BUNDLE.read_text())
    sample, cfg, env = deploy_setup(tmp_path, s3_server)
    wheel = build_wheel(bundle, tmp_path / "dist")
    libraries = bundle["resources"]["jobs"]["realsyn_pipeline"]["tasks"][0]["libraries"]
    assert any(lib.get("whl", "").endswith("/" + wheel.name) for lib in libraries), (wheel.name, libraries)
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    job = {"schemas": sorted({CATALOG + name.split(".")[0] for name in REGISTRY}),
           "tasks": job_tasks(bundle, tmp_path / "work", sample, extra)}
    (tmp_path / "job.json").write_text(json.dumps(job))
    # Only the wheel is importable: not this checkout (the cwd is elsewhere, and PYTHONPATH is the wheel's).
    env = {**env, "PYTHONPATH": str(site)}
    cluster = StandaloneCluster(tmp_path / "cluster")
    try:
        cluster.start()
        cmd = ([os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", cluster.master_url]
               + runtime_args(cfg, step_jars(cfg), site) + [str(DRIVER), str(tmp_path / "job.json")])
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2400, cwd=tmp_path)
        apps = cluster.status()
    finally:
        left = cluster.stop()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-4000:]
    assert left == [], f"processes left behind: {left}"
    ran = [a for a in apps.get("completedapps", []) + apps.get("activeapps", [])]
    assert len(ran) == 1, json.dumps(apps)[:2000]                 # the job cluster's one application
    header, *parts = out.stdout.split("DRIVER task ")
    assert f"from {site}/realsyn/" in header, header[-500:]
    outputs = {}
    for part in parts:
        key, _, rest = part.partition("\n")
        outputs[key] = rest
    return outputs, site


def managed_tables(s3_server) -> set[str]:
    return {k.split("/_delta_log/")[0] for k in s3_server.keys(BUCKET) if "/_delta_log/" in k}


def read_managed(spark, name: str):
    layer, table = name.split(".")
    return spark.read.format("delta").load(f"{MANAGED}/{layer}.db/{table}")


@pytest.mark.cluster
def test_databricks_tasks_start_from_the_wheel_on_catalog_tables(tmp_path, spark, s3_server):
    from realsyn.jobs.pipeline import stage_names
    outputs, _ = run_job(tmp_path, s3_server, lambda task: [] if task["task_key"] == "ingest" else ["--plan"])
    assert list(outputs) == stage_names()
    assert "profile=databricks" in outputs["ingest"]
    assert all("realsyn: plan for profile=databricks" in outputs[s] for s in stage_names()[1:])
    runs = read_managed(spark, "meta.stage_runs").collect()
    assert [r["stage"] for r in runs] == ["ingest"]
    ledger = json.loads(runs[0]["ledger"])["documents"]
    assert ledger["kept"] > 0 and ledger["in"] == ledger["kept"] + sum(ledger["rejected"].values())
    # Each later task planned from the catalog's tables.
    planned = [next(line for line in outputs[s].splitlines() if line.startswith("[")) for s in stage_names()[1:]]
    assert [p[1:p.index("]")] for p in planned] == stage_names()[1:]
    assert planned[:2] == ["[extract_images] would run: no finished run yet",
                           "[extract_sentences] would run: no finished run yet"], planned
    assert all("cannot run yet: needs" in p for p in planned[2:]), planned
    assert managed_tables(s3_server) >= {f"realsyn/managed/{t}" for t in
                                         ("bronze.db/documents", "bronze.db/document_rejects", "meta.db/stage_runs")}


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(3600)   # eleven driver JVMs, one per stage
def test_databricks_job_runs_from_the_wheel_on_catalog_tables(tmp_path, spark, s3_server):
    from realsyn.jobs.pipeline import stage_names
    outputs, _ = run_job(tmp_path, s3_server, lambda task: [])
    assert list(outputs) == stage_names()
    runs = read_managed(spark, "meta.stage_runs").collect()
    assert {r["stage"] for r in runs} == set(stage_names())
    for r in runs:
        for ledger in json.loads(r["ledger"]).values():
            assert ledger["in"] == ledger["kept"] + sum(ledger["rejected"].values()), (r["stage"], ledger)
    assert read_managed(spark, "gold.realsyn").count() > 0
    assert read_managed(spark, "silver.images").where("status = 'kept'").count() > 0
