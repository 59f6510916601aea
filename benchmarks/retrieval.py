"""Hierarchical retrieval: recall against exact search, speed against exact search and
against the same two-level search as one faiss IVF index in one process, and faiss k-means
against Spark MLlib KMeans. All measured side by side in one run.

Prints `RESULT recall_at_k=... speedup_vs_exact=... spark_over_single_process=... kmeans_faiss_over_mllib=...`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.config import load_config  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.jobs.session import get_spark  # noqa: E402
from realsyn.jobs.tables import TableStore  # noqa: E402
from realsyn.schemas import spec  # noqa: E402
from realsyn.udfs.clip_encoder import from_bytes  # noqa: E402
from realsyn.udfs.vector_search import faiss_module  # noqa: E402


def sphere_mixture(rng, n, d, centers, spread):
    """Anisotropic Gaussians around unit centres, projected back onto the sphere."""
    which = rng.integers(0, len(centers), n)
    scales = spread[which]
    x = centers[which] + rng.standard_normal((n, d)).astype(np.float32) * scales
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_table(spark, store, name, key, prefix, vecs, tmp):
    import pyarrow as pa
    import pyarrow.parquet as pq
    d = vecs.shape[1]
    path = f"{tmp}/{name}.parquet"
    blobs = vecs.astype("<f4").view(f"V{4 * d}").reshape(-1)
    table = pa.table({key: [f"{prefix}{i:08d}" for i in range(len(vecs))],
                      "embedding": pa.array([b.tobytes() for b in blobs], pa.binary()),
                      "model": ["bench@1"] * len(vecs), "dim": pa.array([d] * len(vecs), pa.int32()),
                      "dtype": ["float32"] * len(vecs), "status": ["kept"] * len(vecs),
                      "reason": pa.array([None] * len(vecs), pa.string())})
    pq.write_table(table, path, row_group_size=50_000)
    df = spark.read.schema(spec(name).schema).parquet(path)
    store.write(name, df)


def delta_files(spark, store, name):
    return spark.read.format("delta").load(store.path(name)).inputFiles()


def read_vectors(files, key, d):
    import pyarrow.parquet as pq
    from urllib.parse import urlparse
    t = pq.ParquetDataset([urlparse(f).path for f in files]).read(columns=[key, "embedding"])
    return t.column(key).to_pylist(), from_bytes(t.column("embedding").to_pylist(), d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=1_000_000)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--probes", type=int, default=4)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--kmeans-sample", type=int, default=200_000)
    ap.add_argument("--exact-sample", type=int, default=2000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    d = args.dim
    n_topics = max(50, args.sentences // 2000)
    centers = rng.standard_normal((n_topics, d)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = (rng.uniform(0.02, 0.08, (n_topics, d))).astype(np.float32)
    sents = sphere_mixture(rng, args.sentences, d, centers, spread)
    imgs = sphere_mixture(rng, args.images, d, centers, spread)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config("local", overrides=[
            f"run.work_dir={tmp}/work", "spark.master=local[2]", "spark.progress_bar=false", "mlflow.enabled=false",
            f"retrieval.probes={args.probes}", f"retrieval.top_k={args.k}",
            f"retrieval.kmeans_sample={args.kmeans_sample}",
            "spark.conf={spark.driver.memory: 8g, spark.sql.shuffle.partitions: '8'}"])
        spark = get_spark(cfg)
        store = TableStore(spark, cfg)
        write_table(spark, store, "silver.sentence_embeddings", "sentence_id", "s", sents, tmp)
        write_table(spark, store, "silver.image_embeddings", "image_id", "i", imgs, tmp)

        t0 = time.perf_counter()
        run_stages(cfg, ["cluster", "retrieve"], force=True, say=print)
        t_spark = time.perf_counter() - t0

        # The same two-level search in one process: read the stored vectors, IVF with the
        # same centroids and probes, write the top-k. Same thread count as Spark's cores.
        faiss = faiss_module(2)
        cents = np.stack([np.frombuffer(r["centroid"], "<f4") for r in
                          store.read("gold.text_centroids").orderBy("cluster_id").collect()])
        s_files = delta_files(spark, store, "silver.sentence_embeddings")
        i_files = delta_files(spark, store, "silver.image_embeddings")
        t0 = time.perf_counter()
        s_ids, s_vecs = read_vectors(s_files, "sentence_id", d)
        i_ids, i_vecs = read_vectors(i_files, "image_id", d)
        quant = faiss.IndexFlatIP(d)
        quant.add(cents)
        ivf = faiss.IndexIVFFlat(quant, d, len(cents), faiss.METRIC_INNER_PRODUCT)
        ivf.is_trained = True
        ivf.add(s_vecs)
        ivf.nprobe = args.probes
        _, idx = ivf.search(i_vecs, args.k)
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"image_id": np.repeat(np.array(i_ids), args.k),
                                 "sentence_id": np.array(s_ids)[idx.reshape(-1)]}), f"{tmp}/single.parquet")
        t_single = time.perf_counter() - t0

        # Exact brute force over all sentences on a sample of images, scaled linearly.
        sample = np.random.default_rng(1).choice(len(i_vecs), min(args.exact_sample, len(i_vecs)), replace=False)
        flat = faiss.IndexFlatIP(d)
        flat.add(s_vecs)
        t0 = time.perf_counter()
        _, exact_idx = flat.search(i_vecs[sample], args.k)
        t_exact = (time.perf_counter() - t0) * len(i_vecs) / len(sample)
        got = {}
        for r in store.read("gold.retrievals").where("rank >= 1").select("image_id", "sentence_id").toArrow().to_pylist():
            got.setdefault(r["image_id"], set()).add(r["sentence_id"])
        s_ids_arr = np.array(s_ids)
        recall = np.mean([len(got.get(i_ids[q], set()) & set(s_ids_arr[exact_idx[n]])) / args.k
                          for n, q in enumerate(sample)])

        # k-means: faiss vs Spark MLlib on the same 200k vectors, same K and iterations.
        km_n = min(200_000, len(s_vecs))
        km_x, km_k, iters = s_vecs[:km_n], max(2, km_n // 420), 10
        t0 = time.perf_counter()
        km = faiss.Kmeans(d, km_k, niter=iters, seed=1, max_points_per_centroid=km_n)
        km.train(km_x)
        t_faiss_km = time.perf_counter() - t0
        _, assign = km.index.search(km_x, 1)
        faiss_inertia = float(((km_x - km.centroids[assign[:, 0]]) ** 2).sum())
        from pyspark.ml.clustering import KMeans
        from pyspark.ml.linalg import Vectors
        km_df = spark.createDataFrame([(Vectors.dense(v),) for v in km_x], ["features"]).repartition(2).cache()
        km_df.count()
        t0 = time.perf_counter()
        model = KMeans(k=km_k, maxIter=iters, seed=1, initMode="random", tol=0.0).fit(km_df)
        t_mllib = time.perf_counter() - t0
        mllib_inertia = float(model.summary.trainingCost)

    print(f"spark two-level: {t_spark:.1f}s  single-process IVF: {t_single:.1f}s  exact (scaled): {t_exact:.1f}s")
    print(f"k-means K={km_k} iters={iters}: faiss {t_faiss_km:.1f}s inertia={faiss_inertia:.1f}  "
          f"MLlib {t_mllib:.1f}s inertia={mllib_inertia:.1f}")
    print(f"RESULT recall_at_k={recall:.3f} speedup_vs_exact={t_exact / t_spark:.1f} "
          f"spark_over_single_process={t_spark / t_single:.2f} kmeans_faiss_over_mllib={t_faiss_km / t_mllib:.3f}")


if __name__ == "__main__":
    main()
