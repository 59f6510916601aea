import pytest
from pyspark.sql.types import LongType, StringType, StructField, StructType

from realsyn.schemas import REGISTRY, SchemaMismatch, check_schema, spec

DATA_FLOW = ["bronze.documents", "silver.images", "silver.sentences", "silver.image_embeddings",
             "silver.sentence_embeddings", "gold.text_centroids", "gold.retrievals", "gold.synthetic",
             "gold.image_clusters", "gold.realsyn"]


def test_every_table_of_the_data_flow_is_registered_with_keys_and_comments():
    for name in DATA_FLOW:
        t = spec(name)
        assert t.keys and all(k in t.schema.fieldNames() for k in t.keys)
        assert t.description
        assert all(f.metadata.get("comment") for f in t.schema.fields), name
    assert set(DATA_FLOW) <= set(REGISTRY)


def test_mismatch_lists_every_problem():
    bad = StructType([StructField("doc_id", LongType()), StructField("surprise", StringType())])
    with pytest.raises(SchemaMismatch) as err:
        check_schema("bronze.documents", bad)
    msg = str(err.value)
    assert "missing columns" in msg and "surprise" in msg and "doc_id' is bigint" in msg


def test_unknown_table():
    with pytest.raises(KeyError, match="unknown table"):
        spec("gold.nope")


def test_image_bytes_are_stored_once():
    from pyspark.sql.types import BinaryType
    binary = {name for name, t in REGISTRY.items() for f in t.schema.fields if isinstance(f.dataType, BinaryType)
              and f.name == "bytes"}
    assert binary == {"silver.image_fetches"}     # silver.images and every reader join the fetches
