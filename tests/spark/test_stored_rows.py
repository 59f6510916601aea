import numpy as np
import pyarrow as pa

from realsyn.udfs.object_files import boto_uri
from realsyn.jobs.lib.stored_rows import StoredRows, plan_row_groups, split_tasks
from realsyn.udfs.stored_files import RowGroup
from realsyn.jobs.core.tables import TableStore
from realsyn.schemas import spec
from tests.conftest import make_config

DDL = "image_id string, first float"


def first_value(batch: pa.RecordBatch) -> pa.RecordBatch:
    vecs = np.frombuffer(batch.column("embedding").buffers()[2], "<f4")[::2] if batch.num_rows else []
    return pa.RecordBatch.from_arrays([batch.column("image_id"), pa.array(vecs, pa.float32())], names=["image_id", "first"])


PAIRS_IN = "image_id string, embedding binary, text_vec binary, model string"


def pairs_table(spark, tmp_path, n, vector=lambda i: np.array([i, -i], "<f4"), files=3):
    from realsyn.jobs.balance import pairs_layout
    store = TableStore(spark, make_config(tmp_path))
    rows = [(f"id{i:05d}", vector(i).tobytes(), None, "m") for i in range(n)]
    store.write("gold.pair_vectors", pairs_layout(spark.createDataFrame(rows, PAIRS_IN).repartition(files), seed=3))
    return store


def test_reads_row_groups_in_place_with_every_row_once(spark, tmp_path):
    store = pairs_table(spark, tmp_path, 500)
    stored = StoredRows(store, "gold.pair_vectors", ["image_id", "embedding"])
    got = {r["image_id"]: r["first"] for r in stored.map(first_value, DDL).collect()}
    assert stored.in_place and len(stored.groups) >= 3
    assert got == {f"id{i:05d}": float(i) for i in range(500)}


def test_deleted_rows_send_the_same_function_through_spark(spark, tmp_path):
    store = pairs_table(spark, tmp_path, 300)
    table = store.identifier("gold.pair_vectors")
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM {table} WHERE image_id < 'id00100'")   # a deletion vector: files keep the rows
    stored = StoredRows(store, "gold.pair_vectors", ["image_id", "embedding"])
    got = {r["image_id"]: r["first"] for r in stored.map(first_value, DDL).collect()}
    assert not stored.in_place
    assert got == {f"id{i:05d}": float(i) for i in range(100, 300)}


def test_split_tasks_keeps_order_and_balances_rows():
    groups = [RowGroup("a", i, 10) for i in range(5)] + [RowGroup("b", 0, 50)]
    runs = split_tasks(groups, 2)
    assert [g for run in runs for g in run] == groups and len(runs) == 2
    assert split_tasks([], 4) == [] and len(split_tasks(groups[:1], 4)) == 1


def test_files_pyarrow_cannot_open_go_through_spark():
    class Table:
        def inputFiles(self):
            return ["nosuchscheme://bucket/part-0.parquet"]
    assert plan_row_groups(Table(), ["image_id"], 1) is None


def test_hadoop_s3_schemes_open_as_pyarrow_s3():
    assert boto_uri("s3a://bucket/t/part-0.parquet") == "s3://bucket/t/part-0.parquet"
    assert boto_uri("s3n://bucket/x") == "s3://bucket/x"
    assert boto_uri("gs://bucket/x") == "gs://bucket/x" and boto_uri("/tmp/s3a://x") == "/tmp/s3a://x"


def test_a_key_bound_skips_row_groups_and_keeps_every_row_below_it(spark, tmp_path, monkeypatch):
    import dataclasses

    from pyspark.sql import functions as F

    from realsyn.schemas.registry import REGISTRY
    small = dataclasses.replace(spec("gold.pair_vectors"), row_group_bytes=32 << 10)
    monkeypatch.setitem(REGISTRY, "gold.pair_vectors", small)
    store = pairs_table(spark, tmp_path, 3000, vector=lambda i: np.arange(64, dtype="<f4"), files=2)

    def keys(batch: pa.RecordBatch) -> pa.RecordBatch:
        below = pa.array(np.asarray(batch.column("sample_key")) < 100_000)
        return pa.RecordBatch.from_arrays([batch.column("image_id").filter(below)], names=["image_id"])
    stored = StoredRows(store, "gold.pair_vectors", ["image_id", "sample_key"], key="sample_key")
    want = {r[0] for r in store.read("gold.pair_vectors").where(F.col("sample_key") < 100_000).select("image_id").collect()}
    assert stored.in_place and 250 < len(want) < 350                # a seeded draw of about a tenth
    assert {r[0] for r in stored.map(keys, "image_id string", below=100_000).collect()} == want
    read = [g for g in stored.groups if g.low < 100_000]
    assert len(stored.groups) >= 10 and len(read) <= len(stored.groups) // 3
    stored.groups = None                                             # the same bound through Spark
    assert {r[0] for r in stored.map(keys, "image_id string", below=100_000).collect()} == want


def test_row_group_setting_is_restored_after_a_write(spark):
    from realsyn.jobs.core.tables import ROW_GROUP_CONF, row_groups_of
    with row_groups_of(spark, 1 << 20):
        assert spark.conf.get(ROW_GROUP_CONF) == str(1 << 20)
    assert spark.conf.get(ROW_GROUP_CONF, None) is None
