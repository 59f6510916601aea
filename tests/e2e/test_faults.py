"""Faults a real run meets: a rerun, a SIGKILLed driver, two writers at once."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import SAMPLE_CONF, TEST_SETS
from tests.e2e.test_cli import ENV, realsyn



def pipeline_args(sample: Path, work: Path) -> list[str]:
    """The CLI's arguments for the config sample_lakehouse's run had."""
    sets = [*TEST_SETS, f"fetch.file_root={sample}"]
    return [*(arg for s in sets for arg in ("--set", s)), "--conf", SAMPLE_CONF, "--work-dir", str(work),
            "--input", f"{sample}/obelics/*.parquet"]


def content_hash(spark, work: Path, table: str) -> tuple[str, int]:
    """Order-independent hash of a Delta table's rows (read by path)."""
    layer, name = table.split(".")
    rows = spark.read.format("delta").load(str(work / "warehouse" / layer / name)).collect()
    lines = sorted(json.dumps(r.asDict(), sort_keys=True, default=str) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(rows)


def mlflow_runs(work: Path):
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["realsyn"])


@pytest.fixture(scope="module")
def clean_run(sample_lakehouse, tmp_path_factory):
    """The reference run: a copy of the shared sample run's lakehouse. The CLI rerun below
    then skipping every stage also shows that a fingerprint is the same in another process
    and in a moved work dir."""
    sample, copy = sample_lakehouse
    return sample, copy(tmp_path_factory.mktemp("clean") / "work")


def test_rerun_skips_every_stage_and_changes_nothing(clean_run, spark):
    from realsyn.jobs.pipeline import stage_names
    sample, work = clean_run
    before = {t: content_hash(spark, work, t) for t in ("gold.realsyn", "silver.images", "silver.sentences")}
    second = realsyn(*pipeline_args(sample, work), "run")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "stages run: -;" in second.stdout, second.stdout[-4000:]
    assert "bronze.documents" in second.stdout and "MLflow:" in second.stdout and "took" in second.stdout
    assert {t: content_hash(spark, work, t) for t in before} == before
    runs = mlflow_runs(work)
    parents = runs[runs["tags.mlflow.runName"] == "pipeline"].sort_values("start_time")
    assert len(parents) == 2
    assert all(uri.startswith(work.as_uri()) for uri in parents["artifact_uri"]), "artifacts left the work dir"
    children = runs[runs["tags.mlflow.parentRunId"] == parents.iloc[-1]["run_id"]]
    assert sorted(children["tags.mlflow.runName"]) == sorted(stage_names())
    assert (children["tags.skipped"] == "true").all()
    assert "metrics.documents.in" in runs.columns


# The default case resumes through embed, the stage killed; the slow one runs every stage
# after it too and compares the gold tables (the later stages start clean either way).
RESUMED = {"embed": ["--stages", "ingest,extract_images,extract_sentences,embed"], "all": []}
RESUMED_TABLES = {"embed": ("silver.image_embeddings", "silver.sentence_embeddings"),
                  "all": ("gold.realsyn", "gold.retrievals", "silver.image_embeddings")}


@pytest.mark.parametrize("through", ["embed", pytest.param("all", marks=pytest.mark.slow)])
def test_resume_after_driver_sigkill_matches_clean_run(clean_run, sample_lakehouse, spark, tmp_path, through):
    """SIGKILL the driver after embed wrote its first table, then rerun: the same tables.
    The killed run starts where a run reaching embed stands: the lakehouse of the clean run
    without embed's tables, so ingest and both extracts are skipped, not redone."""
    sample, clean_work = clean_run
    work = sample_lakehouse[1](tmp_path / "work")
    for table in ("image_embeddings", "sentence_embeddings"):
        shutil.rmtree(work / "warehouse" / "silver" / table)
    marker = work / "warehouse" / "silver" / "image_embeddings" / "_delta_log" / f"{0:020d}.json"
    log = tmp_path / "killed-run.log"      # a file, not a pipe: a full pipe would stall the run
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "realsyn", *pipeline_args(sample, work), "run"],
                                stdout=fh, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    try:
        deadline = time.time() + 2400
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + log.read_text()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)        # the driver only; its JVM notices and exits
        proc.wait(timeout=30)
        killed_output = log.read_text()
        time.sleep(1.0)                          # a commit in flight lands or not, now
        committed = spark.read.format("delta").load(str(marker.parent.parent)).count()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing of the killed run may linger
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    assert "[embed] started" in killed_output, "the run was killed before embed began"
    assert not re.search(r"\[embed\] image_embeddings: in=", killed_output), "embed finished before the kill"

    resumed = realsyn(*pipeline_args(sample, work), "run", *RESUMED[through])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for stage in ("ingest", "extract_images", "extract_sentences"):
        assert f"[{stage}] skipped" in resumed.stdout
    assert "[embed] skipped" not in resumed.stdout
    # The image vectors committed before the kill (its first units) are not encoded again.
    reuse = re.search(r"silver\.image_embeddings: (\d+) keys, (\d+) already done, (\d+) computed", resumed.stdout)
    assert reuse and int(reuse[2]) == committed > 0, resumed.stdout[-3000:]
    assert int(reuse[3]) == int(reuse[1]) - committed, resumed.stdout[-3000:]
    for table in RESUMED_TABLES[through]:
        assert content_hash(spark, work, table) == content_hash(spark, clean_work, table), table
    keyed = {"gold.realsyn": "image_id", "silver.image_embeddings": "image_id"}
    for table, key in keyed.items():
        if table in RESUMED_TABLES[through]:   # no duplicated rows
            rows = spark.read.format("delta").load(str(work / "warehouse" / Path(*table.split("."))))
            assert rows.count() == rows.select(key).distinct().count(), table


def test_two_writers_at_once_succeed_or_fail_clearly(clean_run, spark, tmp_path):
    """Two ingest runs replace the same tables concurrently; Delta's optimistic concurrency
    lets both commit in turn or rejects one, and the table stays readable and whole."""
    sample, clean_work = clean_run
    work = tmp_path / "work"
    args = [sys.executable, "-m", "realsyn", *pipeline_args(sample, work), "ingest", "--force"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    outs = [p.communicate(timeout=2400) for p in procs]
    codes = [p.returncode for p in procs]
    for code, (out, err) in zip(codes, outs):
        if code != 0:
            last = err.strip().splitlines()[-1]
            assert code == 2 and last.startswith("realsyn: error:") and "concurrent" in last, err[-3000:]
            assert "Traceback" not in err
    assert 0 in codes, outs
    for table in ("bronze.documents", "bronze.document_rejects"):
        assert content_hash(spark, work, table) == content_hash(spark, clean_work, table), table
    print(f"\nconcurrent writers: exit codes {codes}")
