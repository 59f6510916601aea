import os

import pytest
from pyspark.sql.types import StructType

from realsyn.jobs.core.tables import TableStore
from realsyn.schemas import SchemaMismatch, spec
from tests.conftest import make_config


def test_writes_real_delta_with_comments_and_time_travel(spark, tmp_path):
    store = TableStore(spark, make_config(tmp_path))
    schema = spec("gold.retrievals").schema
    v0 = store.write("gold.retrievals", spark.createDataFrame([("a", 1, "s1", 0.5, None)], schema), {"run": "x"})
    v1 = store.write("gold.retrievals", spark.createDataFrame([("a", 1, "s2", 0.7, None), ("b", 1, "s1", 0.1, None)], schema))
    assert (v0, v1) == (0, 1)
    assert os.path.isdir(os.path.join(store.path("gold.retrievals"), "_delta_log"))
    assert store.read("gold.retrievals").count() == 2
    assert store.read("gold.retrievals", version=0).first()["sentence_id"] == "s1"
    detail = spark.sql(f"DESCRIBE DETAIL {store.identifier('gold.retrievals')}").first()
    assert detail["description"] == spec("gold.retrievals").description
    comments = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {store.identifier('gold.retrievals')}").collect()}
    assert comments["rank"].startswith("1 = most similar (text1)")


def test_schema_mismatch_is_refused_before_writing(spark, tmp_path):
    store = TableStore(spark, make_config(tmp_path))
    df = spark.createDataFrame([("a", 1)], "image_id string, rank long")  # wrong type, missing columns
    with pytest.raises(SchemaMismatch, match="gold.retrievals"):
        store.write("gold.retrievals", df)
    assert not store.exists("gold.retrievals")


def test_null_key_is_refused(spark, tmp_path):
    store = TableStore(spark, make_config(tmp_path))
    df = spark.createDataFrame([(None, 1, "s", 0.1, None)],
                               "image_id string, rank int, sentence_id string, score float, reason string")
    with pytest.raises(ValueError, match="key column"):
        store.write("gold.retrievals", df)
    assert not store.exists("gold.retrievals")  # failed inside the write job: nothing committed
    good = spark.createDataFrame([("a", 1, "s", 0.1, None)], df.schema)
    store.write("gold.retrievals", good)
    with pytest.raises(ValueError, match="key column"):
        store.append("gold.retrievals", df)
    assert store.read("gold.retrievals").count() == 1


def test_version_follows_writes_made_outside_the_store(spark, tmp_path):
    """The runner's fingerprints rest on version(): it reads the Delta log's latest commit,
    including one another writer made after the store last looked, as DESCRIBE HISTORY does."""
    store = TableStore(spark, make_config(tmp_path))
    schema = spec("gold.retrievals").schema
    store.write("gold.retrievals", spark.createDataFrame([("a", 1, "s1", 0.5, None)], schema))
    assert store.version("gold.retrievals") == 0
    for _ in range(2):   # a writer that is not the store
        spark.createDataFrame([("b", 1, "s1", 0.5, None)], schema).write.format("delta").mode("append") \
            .save(store.path("gold.retrievals"))
    history = spark.sql(f"DESCRIBE HISTORY {store.identifier('gold.retrievals')} LIMIT 1").first()["version"]
    assert store.version("gold.retrievals") == history == 2
    assert store.version("gold.image_clusters") is None


def test_a_property_key_is_spelled_once_and_prefixed_in_one_place(spark, tmp_path):
    """Written with the write, set later, read back: by the same unprefixed key each time,
    stored under realsyn.<key> where other Delta readers see it."""
    from realsyn.jobs.core.tables import property_name
    from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY
    store = TableStore(spark, make_config(tmp_path))
    df = spark.createDataFrame([("a", 1, "s1", 0.5, None)], spec("gold.retrievals").schema)
    store.write("gold.retrievals", df, {WORK_FINGERPRINT_PROPERTY: "f1"})
    store.set_properties("gold.retrievals", {"fit_id": "7"})
    assert store.property("gold.retrievals", WORK_FINGERPRINT_PROPERTY) == "f1"
    assert store.property("gold.retrievals", "fit_id") == "7"
    raw = spark.sql(f"DESCRIBE DETAIL {store.identifier('gold.retrievals')}").first()["properties"]
    assert raw[property_name(WORK_FINGERPRINT_PROPERTY)] == "f1" == raw["realsyn.work_fingerprint"]
    assert raw["realsyn.fit_id"] == "7" and raw["realsyn.keys"] == "image_id,rank"
