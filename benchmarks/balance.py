"""Balance sampling (similarity window + image k-means + nested caps) in Spark against a
pandas/numpy/faiss single-process implementation over the same stored rows, side by side.

Both sides are timed from reading the stored pairs (gold.pair_vectors: image_id, image
vector, synthetic-text vector) to writing the result (Spark: gold.image_clusters through
the stage's own code; single process: one Parquet file). Both fit k-means on the same
key-hash sample with the same K and iterations, and assign every windowed pair.

Prints `RESULT balance_rows_per_s=... spark_over_pandas=...` and, per cap t, the largest
cluster after capping, which must equal min(t, largest cluster) on both sides.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.balance import PAIRS, BalanceParams, balance_stored, pairs_layout  # noqa: E402
from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.core.session import get_spark  # noqa: E402
from realsyn.jobs.core.tables import TableStore  # noqa: E402
from realsyn.udfs.balance_ops import SAMPLE_BUCKETS, min_cap, sample_bound  # noqa: E402
from realsyn.udfs.vector_codec import arrow_vectors  # noqa: E402
from realsyn.udfs.vector_search import faiss_module, fit_kmeans  # noqa: E402


def synthetic_pairs(rng, n, d, n_topics):
    """Image vectors from topics of uneven size; text vectors at a chosen cosine to them."""
    centers = rng.standard_normal((n_topics, d)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    weights = rng.pareto(1.5, n_topics) + 0.2          # a few big topics, many small ones
    which = rng.choice(n_topics, n, p=weights / weights.sum())
    img = centers[which] + rng.standard_normal((n, d)).astype(np.float32) * 0.06
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    cos = np.clip(rng.normal(0.56, 0.07, n), -1, 1).astype(np.float32)
    noise = rng.standard_normal((n, d)).astype(np.float32)
    noise -= (noise * img).sum(1, keepdims=True) * img       # orthogonal to the image vector
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    txt = cos[:, None] * img + np.sqrt(1 - cos[:, None] ** 2) * noise
    return img, txt.astype(np.float32)


def write_pairs(store, img, txt, tmp, seed):
    """gold.pair_vectors as the stage writes it (its layout, one Delta write from Spark)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    d = img.shape[1]

    def blobs(v):
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * d), len(v), [None, pa.py_buffer(v.astype("<f4"))]).cast(pa.binary())
    table = pa.table({"image_id": [f"{i:064x}" for i in range(len(img))],
                      "embedding": blobs(img), "text_vec": blobs(txt), "model": pa.nulls(len(img), pa.string())})
    os.makedirs(tmp, exist_ok=True)
    pq.write_table(table, f"{tmp}/pairs.parquet", row_group_size=50_000)
    store.write(PAIRS, pairs_layout(store.spark.read.parquet(f"{tmp}/pairs.parquet"), seed))


def spark_side(store, dim, p):
    t0 = time.perf_counter()
    out, k, in_place = balance_stored(store, PAIRS, dim, "float32", p)
    assert in_place, "gold.pair_vectors was not read in place"
    store.write("gold.image_clusters", out)
    return time.perf_counter() - t0, k


def rank_hash(ids, seed: int) -> np.ndarray:
    """The single process's seeded rank key (SipHash; Spark ranks by xxhash64): uint64 per id."""
    import pandas as pd
    key = hashlib.sha256(f"rank:{seed}".encode()).hexdigest()[:16]
    return pd.util.hash_array(np.asarray(ids, dtype=object), hash_key=key, categorize=False)


def single_process(files, d, p: BalanceParams, out_path, threads):
    """The same three steps with pyarrow, numpy and faiss in one process."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from urllib.parse import urlparse
    t = pq.ParquetDataset([urlparse(f).path for f in files]).read()
    ids = t.column("image_id").to_numpy(zero_copy_only=False)
    img, txt = arrow_vectors(t.column("embedding"), d), arrow_vectors(t.column("text_vec"), d)
    sim = np.einsum("ij,ij->i", img, txt)
    keep = (sim >= p.sim_min) & (sim <= p.sim_max)
    bound = sample_bound(min(1.0, p.kmeans_sample / len(ids)))
    fraction = bound / SAMPLE_BUCKETS
    sample = img[(t.column("sample_key").to_numpy() < bound) & keep]
    k = max(1, min(p.num_clusters, int(round(len(sample) / fraction)) // p.images_per_cluster or 1))
    cents = fit_kmeans(sample, k, p.kmeans_iters, p.seed, threads)
    faiss = faiss_module(threads)
    index = faiss.IndexFlatIP(d)
    index.add(cents)
    _, nearest = index.search(np.ascontiguousarray(img[keep]), 1)
    cluster = np.full(len(ids), -1, dtype=np.int64)
    cluster[keep] = nearest[:, 0]
    # seeded random rank inside each cluster: sort by (cluster, hash), count within runs
    h = rank_hash(ids, p.seed)
    order = np.lexsort((ids, h, cluster))
    sc = cluster[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sc)) + 1]
    run_len = np.diff(np.r_[starts, len(sc)])
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(sc)) - np.repeat(starts, run_len)
    caps = min_cap(rank, p.caps)
    reason = np.where(sim > p.sim_max, "ocr_like", np.where(sim < p.sim_min, "mismatch", None))
    pq.write_table(pa.table({
        "image_id": ids, "cluster_id": pa.array(np.where(keep, cluster, 0).astype("int32"), mask=~keep),
        "sim": sim.astype("float32"), "rank_in_cluster": pa.array(rank.astype("int32"), mask=~keep),
        "min_cap": pa.array(caps, mask=~keep | (caps < 0)),
        "status": np.where(keep, "kept", "rejected"), "reason": pa.array(reason, pa.string())}), out_path)
    return cluster[keep], caps[keep], len(cents)


def capped_max(cluster, caps, cap_values):
    sizes = np.bincount(cluster)
    return int(sizes.max()), {c: int(np.bincount(cluster[(caps > 0) & (caps <= c)], minlength=len(sizes)).max())
                              for c in cap_values}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--kmeans-sample", type=int, default=50_000)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="faiss threads of the single process (= Spark cores)")
    ap.add_argument("--warmup-rows", type=int, default=20_000,
                    help="each side first runs once over its own table of this many rows (0: cold)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    img, txt = synthetic_pairs(rng, args.rows, args.dim, max(50, args.clusters // 4))

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"run.work_dir={tmp}/work", "spark.master=local[2]", "spark.progress_bar=false", "mlflow.enabled=false",
            f"balance.num_clusters={args.clusters}", f"kmeans.sample={args.kmeans_sample}",
            f"kmeans.iters={args.iters}",
            "spark.conf={spark.driver.memory: 4g, spark.sql.shuffle.partitions: '8'}"]
        cfg = load_config("local", overrides=overrides)
        spark = get_spark(cfg)
        store = TableStore(spark, cfg)
        p = BalanceParams.from_config(cfg)
        write_pairs(store, img, txt, f"{tmp}/main", p.seed)
        del img, txt
        warm_files, t_cold = [], None
        if args.warmup_rows:
            # JIT, Python workers and first Delta reads happen once per session; the same
            # warm-up on both sides keeps them out of the per-row comparison.
            warm = TableStore(spark, load_config("local", overrides=overrides + [f"tables.warehouse={tmp}/warm"]))
            write_pairs(warm, *synthetic_pairs(np.random.default_rng(1), args.warmup_rows, args.dim, 50),
                        f"{tmp}/warm-in", p.seed)
            t_cold, _ = spark_side(warm, args.dim, p)
            warm_files = warm.read(PAIRS).inputFiles()

        t_spark, k_spark = spark_side(store, args.dim, p)

        files = store.read(PAIRS).inputFiles()
        kept = store.read("gold.image_clusters").where("status = 'kept'").select("cluster_id", "min_cap").toArrow()
        cl_sp = kept.column("cluster_id").to_numpy()
        caps_sp = kept.column("min_cap").fill_null(-1).to_numpy()
        spark.stop()   # the single process gets the machine's memory to itself

        t_cold_pd = time.perf_counter()
        if warm_files:
            single_process(warm_files, args.dim, p, f"{tmp}/warm.parquet", args.threads)
        t_cold_pd = time.perf_counter() - t_cold_pd
        t0 = time.perf_counter()
        cl_pd, caps_pd, k_pd = single_process(files, args.dim, p, f"{tmp}/single.parquet", args.threads)
        t_pandas = time.perf_counter() - t0

    print(f"rows={args.rows} dim={args.dim} window kept: spark={len(cl_sp)} single={len(cl_pd)}  "
          f"K: spark={k_spark} single={k_pd}")
    if t_cold is not None:
        print(f"warm-up over {args.warmup_rows} rows: spark {t_cold:.1f}s  single process {t_cold_pd:.1f}s")
    print(f"spark: {t_spark:.1f}s  single process: {t_pandas:.1f}s")
    ok = len(cl_sp) == len(cl_pd)
    for name, cl, cp in (("spark", cl_sp, caps_sp), ("single", cl_pd, caps_pd)):
        largest, capped = capped_max(cl, cp, p.caps)
        for c in p.caps:
            ok &= capped[c] == min(c, largest)
            print(f"{name}: cap t={c} max cluster after capping={capped[c]} "
                  f"(largest cluster {largest}, min(t, largest)={min(c, largest)})")
    print(f"RESULT balance_rows_per_s={args.rows / t_spark:.0f} spark_over_pandas={t_spark / t_pandas:.2f} "
          f"max_cluster_after_cap={capped_max(cl_sp, caps_sp, p.caps)[1][max(p.caps)]} checks_ok={ok}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
