import numpy as np
import pytest

from realsyn.jobs.embedding_tables import check_same_model
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


def test_semantic_dedup_collapses_exactly_the_planted_groups(spark, tmp_path):
    from realsyn.jobs.embed import DedupParams, semantic_dedup
    from realsyn.jobs.stage import Context
    from realsyn.jobs.tables import TableStore
    from realsyn.jobs.tracking import Tracker
    from realsyn.schemas import spec
    from tests.conftest import make_config

    class Owner:  # a stage that may write the table under test
        name, outputs, inputs = "t", ("silver.sentence_embeddings",), ()

    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    copies = {3: 2, 50: 1, 120: 3}
    vecs, ids = list(base), [f"s{i:04d}" for i in range(300)]
    for src, n in copies.items():
        for j in range(n):
            v = base[src] + 0.005 * rng.standard_normal(16).astype(np.float32)
            vecs.append(v / np.linalg.norm(v))
            ids.append(f"s{src:04d}_{j}")
    cfg = make_config(tmp_path, "embedding.dedup_points_per_cluster=30", "mlflow.enabled=false")
    store = TableStore(spark, cfg)
    rows = [(i, v.astype("<f4").tobytes(), "m", 16, "float32", "kept", None) for i, v in zip(ids, vecs)]
    store.write("silver.sentence_embeddings", spark.createDataFrame(rows, spec("silver.sentence_embeddings").schema))
    ctx = Context(spark, store, Tracker(cfg), Owner())
    dedup = DedupParams.from_config(cfg)
    assert semantic_dedup(ctx, "silver.sentence_embeddings", "sentence_id", 0.98, None, dedup) == sum(copies.values())
    dropped = {r["sentence_id"] for r in store.read("silver.sentence_embeddings")
               .where("reason = 'duplicate_semantic'").collect()}
    assert dropped == {f"s{src:04d}_{j}" for src, n in copies.items() for j in range(n)}
