import numpy as np
from pyspark.sql import functions as F

from realsyn.jobs.balance import min_cap_expr
from realsyn.udfs.balance_ops import min_cap


def test_caps_are_respected_nested_and_small_clusters_kept_whole(sample_pipeline):
    cfg, result, store = sample_pipeline
    led = {l.name: l for o in result.outcomes for l in o.ledgers}["balance_pairs"]
    assert led.rows_in == led.kept + led.rejected_total
    ic = store.read("gold.image_clusters").where("status = 'kept'")
    sizes = {r["cluster_id"]: r["count"] for r in ic.groupBy("cluster_id").count().collect()}
    caps = cfg.get("balance.caps")
    previous = set()
    for cap in caps:
        members = {r["image_id"] for r in ic.where(F.col("min_cap") <= cap).select("image_id").collect()}
        per_cluster = {r["cluster_id"]: r["count"] for r in
                       ic.where(F.col("min_cap") <= cap).groupBy("cluster_id").count().collect()}
        for cid, n in sizes.items():
            assert per_cluster.get(cid, 0) == min(cap, n)      # capped, or whole when smaller
        assert previous <= members                              # nested
        previous = members


def test_same_seed_same_subsets(spark, sample_pipeline):
    from realsyn.jobs.pipeline import run_stages
    cfg, _, store = sample_pipeline
    before = store.read("gold.image_clusters").orderBy("image_id").collect()
    run_stages(cfg, ["balance"], force=True, say=lambda *_: None)
    assert store.read("gold.image_clusters").orderBy("image_id").collect() == before


def test_min_cap_expression_is_the_benchmarks_rule(spark):
    ranks = [0, 19, 20, 34, 35, 179, 180, 10_000]
    df = spark.createDataFrame([(r,) for r in ranks] + [(None,)], "rank_in_cluster int")
    got = [r[0] for r in df.select(min_cap_expr([20, 35, 180])).collect()]
    assert got == [20, 20, 35, 35, 180, 180, None, None, None]
    # the same function on numpy (the single-process benchmark), -1 where SQL has null
    assert [None if c < 0 else c for c in min_cap(np.array(ranks), [35, 20, 180]).tolist()] == got[:-1]
