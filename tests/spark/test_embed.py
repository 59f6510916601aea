import numpy as np
import pytest

from realsyn.jobs.lib.embedding_tables import check_same_model
from realsyn.udfs.vector_codec import from_bytes


def test_embeddings_cover_every_kept_row(sample_pipeline):
    _, result, store = sample_pipeline
    ledgers = {l.name: l for o in result.outcomes for l in o.ledgers}
    for name, source in (("image_embeddings", "silver.images"), ("sentence_embeddings", "silver.sentences")):
        led = ledgers[name]
        assert led.rows_in == led.kept + led.rejected_total
        assert led.rows_in == store.read(source).where("status = 'kept'").count()


def test_vectors_are_normalised_and_tagged(sample_pipeline):
    _, _, store = sample_pipeline
    rows = store.read("silver.image_embeddings").where("status = 'kept'").limit(20).collect()
    dim = rows[0]["dim"]
    vecs = from_bytes([r["embedding"] for r in rows], dim)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert {r["model"] for r in rows} == {"tiny@seed:42"}
    assert check_same_model(store.read, "silver.image_embeddings", "silver.sentence_embeddings") == "tiny@seed:42"


def test_mixed_models_are_refused(spark, sample_pipeline):
    _, _, store = sample_pipeline
    a = store.read("silver.image_embeddings")
    tables = {"x": a, "y": a.where("status = 'kept'").limit(1).selectExpr("image_id", "embedding", "'other@1' AS model", "dim", "dtype",
                                                "status", "reason")}
    with pytest.raises(ValueError, match="different models"):
        check_same_model(tables.__getitem__, "x", "y")
