import numpy as np
import pyarrow as pa

from realsyn.jobs.stored_rows import RowGroup, StoredRows, plan_row_groups, pyarrow_uri, split_tasks
from realsyn.jobs.tables import TableStore
from realsyn.schemas import spec
from tests.conftest import make_config

DDL = "image_id string, first float"


def first_value(batch: pa.RecordBatch) -> pa.RecordBatch:
    vecs = np.frombuffer(batch.column("embedding").buffers()[2], "<f4")[::2] if batch.num_rows else []
    return pa.RecordBatch.from_arrays([batch.column("image_id"), pa.array(vecs, pa.float32())], names=["image_id", "first"])


def pairs_table(spark, tmp_path, n):
    store = TableStore(spark, make_config(tmp_path))
    rows = [(f"id{i:05d}", np.array([i, -i], "<f4").tobytes(), None, "m") for i in range(n)]
    store.write("gold.pair_vectors", spark.createDataFrame(rows, spec("gold.pair_vectors").schema).repartition(3))
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
    assert pyarrow_uri("s3a://bucket/t/part-0.parquet") == "s3://bucket/t/part-0.parquet"
    assert pyarrow_uri("s3n://bucket/x") == "s3://bucket/x"
    assert pyarrow_uri("gs://bucket/x") == "gs://bucket/x" and pyarrow_uri("/tmp/s3a://x") == "/tmp/s3a://x"
