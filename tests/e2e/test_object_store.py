"""The whole pipeline on object storage: input, warehouse, exports and MLflow artifacts under
s3a:// on a real S3 API (moto's server on 127.0.0.1), equal to the local run of the same
sample; and a store that pyarrow cannot open read through Spark instead."""
from __future__ import annotations

import hashlib
import json
import os

import pyarrow as pa
import pytest

from tests.conftest import SAMPLE_CONF, make_config
from tests.s3_server import TEST_SECRET, S3Server

# Columns that name where a row came from, not what it holds: the input's own path.
LOCATION_COLUMNS = {"source_file"}


def table_digest(df) -> tuple[str, int]:
    cols = [c for c in df.columns if c not in LOCATION_COLUMNS]
    lines = sorted(json.dumps(r.asDict(), sort_keys=True, default=str) for r in df.select(*cols).collect())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


@pytest.fixture(scope="module")
def s3_pipeline(spark, s3_server, sample_dir, tmp_path_factory):
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.tables import TableStore
    bucket = s3_server.bucket("realsyn-pipeline")
    client = s3_server.client()
    for name in sorted(os.listdir(sample_dir / "obelics")):
        client.upload_file(str(sample_dir / "obelics" / name), bucket, f"obelics/{name}")
    root = f"s3a://{bucket}"
    work = tmp_path_factory.mktemp("s3-work")
    cfg = make_config(work, f"run.input={root}/obelics/*.parquet", f"fetch.file_root={sample_dir}",
                      f"tables.warehouse={root}/warehouse", f"export.dir={root}/export",
                      f"mlflow.artifact_root={root}/mlflow", files=[SAMPLE_CONF])
    said: list[str] = []
    result = run_stages(cfg, say=said.append)
    return cfg, result, TableStore(spark, cfg), bucket, work, said


def test_every_table_on_s3_equals_the_local_run(s3_pipeline, sample_pipeline):
    from realsyn.schemas import REGISTRY
    _, _, s3_tables, bucket, _, _ = s3_pipeline
    _, _, local_tables = sample_pipeline
    assert s3_tables.path("gold.realsyn").startswith(f"s3a://{bucket}/warehouse/")
    compared = 0
    for name in REGISTRY:
        if name.startswith("meta."):
            continue          # run ids and timings
        assert table_digest(s3_tables.read(name)) == table_digest(local_tables.read(name)), name
        compared += 1
    assert compared >= 10
    assert s3_tables.read("gold.realsyn").count() > 0


def test_exports_and_run_artifacts_are_objects_in_the_bucket(s3_pipeline, s3_server):
    from realsyn.jobs.lib.torch_data import gold_dataset, samples_in_index
    _, _, s3_tables, bucket, work, _ = s3_pipeline
    export = set(s3_server.keys(bucket, "export/"))
    assert "export/README.md" in export and "export/samples.png" in export
    assert any(k.startswith("export/realsyn_cap") and k.endswith(".parquet") for k in export)
    assert any(k.startswith("export/webdataset/") and k.endswith(".tar") for k in export)
    assert not any(k.endswith(".tmp") for k in export)
    gold = s3_tables.read("gold.realsyn").count()
    assert samples_in_index(f"s3a://{bucket}/export/mds") == gold
    rows = sum(1 for _ in gold_dataset(f"s3a://{bucket}/export/mds", batch_size=4,
                                            cache_dir=str(work / "mds-cache")))
    assert rows == gold
    artifacts = s3_server.keys(bucket, "mlflow/")
    assert any(k.endswith("dataset_card/README.md") for k in artifacts), artifacts[:20]
    assert any(k.endswith("config/resolved.yaml") for k in artifacts)
    assert not os.path.exists(work / "export"), "nothing exported to the local work dir"


def test_the_in_place_readers_opened_the_s3_files(s3_pipeline):
    from realsyn.jobs.lib.stored_rows import StoredRows
    _, _, s3_tables, _, _, _ = s3_pipeline
    rows = StoredRows(s3_tables, "silver.image_embeddings", ["image_id", "embedding"])
    assert rows.in_place and all(g.file.startswith("s3a://") for g in rows.groups)


def test_no_secret_reaches_the_run_records(s3_pipeline, s3_server):
    """The secret key was in the environment of the run: it is in no table, no MLflow
    param, tag or artifact, no console line and no log file."""
    import mlflow
    from realsyn.jobs.core.tracking import tracking_location
    cfg, _, s3_tables, bucket, work, said = s3_pipeline
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == TEST_SECRET
    assert TEST_SECRET not in "\n".join(said)
    for name in ("meta.stage_runs",):
        assert TEST_SECRET not in json.dumps([r.asDict() for r in s3_tables.read(name).collect()], default=str)
    uri, _ = tracking_location(cfg)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[cfg.get("mlflow.experiment")])
    assert len(runs) > 0 and TEST_SECRET not in runs.to_json()
    client = s3_server.client()
    for key in s3_server.keys(bucket, "mlflow/"):
        if key.endswith((".md", ".txt", ".json", ".yaml", ".log")):
            assert TEST_SECRET.encode() not in client.get_object(Bucket=bucket, Key=key)["Body"].read(), key
    for root, _, files in os.walk(work):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert TEST_SECRET.encode() not in fh.read(), os.path.join(root, f)


class OneTable:
    """The Tables protocol over one Delta path (what StoredRows reads by name)."""

    def __init__(self, spark, path):
        self.spark, self.path = spark, path

    def read(self, name):
        return self.spark.read.format("delta").load(self.path)


def test_a_store_pyarrow_cannot_open_is_read_through_spark(spark, s3_server, tmp_path):
    """A bucket Hadoop reaches through its own per-bucket endpoint, which pyarrow (reading
    the one place, AWS_ENDPOINT_URL_S3) does not know: the plan falls back to Spark's
    reader and the batch function sees the same rows."""
    from realsyn.jobs.lib.stored_rows import StoredRows
    from realsyn.udfs.stored_files import parquet_file
    other = S3Server(str(tmp_path / "moto2.log")).start()
    try:
        bucket = other.bucket("realsyn-elsewhere")
        spark.sparkContext._jsc.hadoopConfiguration().set(f"fs.s3a.bucket.{bucket}.endpoint", other.url)
        path = f"s3a://{bucket}/t"
        spark.range(0, 500, 1, 3).selectExpr("id", "id * 2 AS twice").write.format("delta").save(path)
        table = OneTable(spark, path)
        with pytest.raises((OSError, pa.ArrowException)):
            parquet_file(table.read("t").inputFiles()[0])      # pyarrow asks the other server
        rows = StoredRows(table, "t", ["id", "twice"])
        assert not rows.in_place

        def total(batch: pa.RecordBatch) -> pa.RecordBatch:
            return pa.RecordBatch.from_arrays([pa.array([sum(batch.column("twice").to_pylist())])], ["s"])
        assert sum(r["s"] for r in rows.map(total, "s long").collect()) == sum(2 * i for i in range(500))
    finally:
        other.stop()
