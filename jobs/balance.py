"""balance: semantic balance sampling -> gold.image_clusters (PAPER.md section 4).

1. image / synthetic-text cosine with the same CLIP; keep [sim_min, sim_max]
   (above: ocr_like, below: mismatch);
2. k-means of the kept image embeddings (faiss on a sample, centroids broadcast);
3. a seeded random rank inside each cluster (hash of image_id, then a window): an image
   is in the subset of cap t iff rank < t, so the subsets are nested by construction.
One pass, no collect of the table.
"""
from __future__ import annotations

import sys

from pyspark.sql import Window
from pyspark.sql import functions as F

from realsyn.jobs.cluster import assign_fn, collect_vectors, embedding_meta, hash_sample
from realsyn.jobs.embed import OUT_DDL, check_same_model, encoder_spec
from realsyn.jobs.stage import Context, Ledger, Stage, ledger_from_status
from realsyn.udfs.embed_batches import embed_texts
from realsyn.udfs.vector_search import fit_kmeans


def min_cap_expr(caps: list[int]):
    expr = None
    for cap in sorted(caps):
        cond = F.col("rank_in_cluster") < cap
        expr = F.when(cond, F.lit(cap)) if expr is None else expr.when(cond, F.lit(cap))
    return expr


class Balance(Stage):
    name = "balance"
    description = "similarity window, image k-means and nested per-cluster caps"
    inputs = ("silver.image_embeddings", "gold.synthetic")
    outputs = ("gold.image_clusters",)
    config_sections = ("balance", "models", "embedding", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg, spark = ctx.cfg, ctx.spark
        emb = ctx.read("silver.image_embeddings")
        check_same_model(ctx.read, "silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        spec = encoder_spec(cfg)
        syn = ctx.read("gold.synthetic").where("status = 'kept'").select("image_id", "syn_text")
        n_in = syn.count()
        syn_vecs = (syn.select(F.col("image_id").alias("sentence_id"), F.col("syn_text").alias("text"))
                    .mapInPandas(embed_texts(spec, cfg.get("embedding.batch_size"), dtype),
                                 OUT_DDL.format(key="sentence_id"))
                    .select(F.col("sentence_id").alias("image_id"), F.col("embedding").alias("text_vec")))
        pairs = (emb.where("status = 'kept'").select("image_id", "embedding").join(syn_vecs, "image_id"))
        scored = (pairs.where(F.col("text_vec").isNotNull())
                  .mapInPandas(similarity_fn(dim, dtype), "image_id string, embedding binary, sim float"))
        lo, hi = cfg.get("balance.sim_min"), cfg.get("balance.sim_max")
        scored = scored.withColumn("reason", F.when(F.col("sim") > hi, "ocr_like").when(F.col("sim") < lo, "mismatch"))
        unencoded = pairs.where(F.col("text_vec").isNull()).select(
            "image_id", "embedding", F.lit(None).cast("float").alias("sim"), F.lit("encode_error").alias("reason"))
        scored = scored.unionByName(unencoded).persist()

        window = scored.where(F.col("reason").isNull()).select("image_id", "embedding")  # the sim window
        n_window = window.count()
        k = max(1, min(cfg.get("balance.num_clusters"), n_window // cfg.get("balance.images_per_cluster") or 1))
        fraction = min(1.0, cfg.get("retrieval.kmeans_sample") / max(n_window, 1))
        _, sample = collect_vectors(hash_sample(window, "image_id", fraction, cfg.get("run.seed")),
                                    "image_id", dim, dtype)
        if len(sample):
            centroids = fit_kmeans(sample, k, cfg.get("retrieval.kmeans_iters"), cfg.get("run.seed"))
            assigned = window.mapInPandas(
                assign_fn(centroids.astype("<f4").tobytes(), dim, dtype, 1, cfg.profile == "gpu"),
                "image_id string, embedding binary, cluster_id int, probe int").select("image_id", "cluster_id")
        else:
            assigned = spark.createDataFrame([], "image_id string, cluster_id int")
        order = Window.partitionBy("cluster_id").orderBy(F.xxhash64("image_id", F.lit(cfg.get("run.seed"))), "image_id")
        ranked = assigned.withColumn("rank_in_cluster", (F.row_number().over(order) - 1).cast("int"))
        ranked = ranked.withColumn("min_cap", min_cap_expr(cfg.get("balance.caps")))
        out = (scored.select("image_id", "sim", "reason").join(ranked, "image_id", "left")
               .select("image_id", F.col("cluster_id").cast("int"), F.col("sim").cast("float"),
                       "rank_in_cluster", F.col("min_cap").cast("int"),
                       F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason"))
        ctx.write("gold.image_clusters", out)
        scored.unpersist()
        written = ctx.tables.read("gold.image_clusters")
        caps = {f"subset_{c}": written.where(F.col("min_cap") <= c).count() for c in cfg.get("balance.caps")}
        ctx.tracker.metrics({**caps, "image_clusters": k})
        return [ledger_from_status("balance_pairs", n_in, written)]


def similarity_fn(dim: int, dtype: str):
    import numpy as np

    from realsyn.udfs.clip_encoder import from_bytes

    def run(batches):
        for b in batches:
            a = from_bytes(b["embedding"].tolist(), dim, dtype)
            t = from_bytes(b["text_vec"].tolist(), dim, dtype)
            b = b[["image_id", "embedding"]].copy()
            b["sim"] = np.einsum("ij,ij->i", a, t).astype("float32")
            yield b
    return run


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["balance", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
