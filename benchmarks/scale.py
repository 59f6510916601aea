"""Growth of the pipeline's row-heavy stages with the data: dedup (perceptual groups, then
semantic_neighbours + semantic_dedup), cluster, retrieve and balance, at N, 2N and 4N images
(4x as many sentences), each size in a fresh driver against a standalone cluster on
127.0.0.1, so the driver's memory (its Python process and its JVM) is measured apart from the
executors'.

The data is synthetic: pHashes with planted near-duplicate groups and one hot group (one
placeholder image shared by many, some copies a bit off), image and sentence embeddings from
topic mixtures with planted near-copies. Recall: the share of planted members whose group's
representative is the one the rule names (the largest image; the smallest sentence id).

Prints per stage time(2N)/time(N), time(4N)/time(2N), the driver's peak RSS at each size,
and last `RESULT dedup_scaling_2x=... cluster_scaling_2x=... retrieve_scaling_2x=...
balance_scaling_2x=... driver_rss_ratio_4x=... planted_dup_recall=...` (the 2x ratios are
the larger of the two steps; the RSS ratio is the larger of Python's and the JVM's).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("dedup", "cluster", "retrieve", "balance")


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM: the process's peak resident set, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def flip_bits(rng, h: np.ndarray, max_bits: int) -> np.ndarray:
    """Each hash with 1..max_bits random bits flipped."""
    out = h.copy()
    for i in range(len(h)):
        for b in rng.choice(64, size=rng.integers(1, max_bits + 1), replace=False):
            out[i] ^= np.uint64(1) << np.uint64(b)
    return out


def planted_phashes(rng, n: int, n_groups: int, hot: int):
    """n hashes: random ones, n_groups groups of 3 (a base and two copies 1-3 bits off), and a
    hot group of `hot` images: nine in ten share one hash exactly, the rest 1 bit off it.
    Returns hashes (int64) and the planted groups (lists of row numbers)."""
    h = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)
    groups = []
    rows = rng.permutation(n)
    at = 0
    for _ in range(n_groups):
        g = rows[at:at + 3]
        at += 3
        h[g[1:]] = flip_bits(rng, h[g[:1]].repeat(2), 3)
        groups.append(g.tolist())
    g = rows[at:at + hot]
    h[g] = h[g[0]]
    off = g[1:][rng.random(len(g) - 1) < 0.1]
    h[off] = h[g[0]] ^ (np.uint64(1) << rng.integers(0, 64, size=len(off)).astype(np.uint64))
    groups.append(g.tolist())
    return h.view(np.int64), groups


def topic_vectors(rng, n: int, d: int, n_topics: int, spread: float = 0.12) -> np.ndarray:
    centers = rng.standard_normal((n_topics, d)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = centers[rng.integers(0, n_topics, n)] + rng.standard_normal((n, d)).astype(np.float32) * spread
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def plant_copies(rng, v: np.ndarray, n_groups: int) -> list[list[int]]:
    """Overwrite rows with near-copies (cosine about 0.9999) of others: groups of 2."""
    rows = rng.permutation(len(v))[:2 * n_groups].reshape(-1, 2)
    noisy = v[rows[:, 0]] + rng.standard_normal((len(rows), v.shape[1])).astype(np.float32) * 0.002
    v[rows[:, 1]] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return rows.tolist()


def blobs(v: np.ndarray):
    import pyarrow as pa
    d = v.shape[1]
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * d), len(v), [None, pa.py_buffer(v.astype("<f4"))]).cast(pa.binary())


def write_parquet(table, path: str) -> None:
    import pyarrow.parquet as pq
    pq.write_table(table, path, row_group_size=100_000)


def image_ids(n: int) -> list[str]:
    return [f"{i:064x}" for i in range(n)]


def config_overrides(args) -> list[str]:
    return [
        f"run.work_dir={args.tmp}/work", f"spark.master={args.master}", "spark.progress_bar=false",
        "mlflow.enabled=false", f"kmeans.sample={args.kmeans_sample}", "images.semantic_dedup_cosine=0.98",
        "sentences.semantic_dedup_cosine=0.98",
        "spark.conf={spark.driver.memory: 2g, spark.executor.memory: 6g, spark.executor.cores: '2', "
        "spark.driver.host: 127.0.0.1, spark.sql.shuffle.partitions: '16', spark.ui.enabled: 'false'}"]


def generate(args) -> None:
    """The synthetic input as Parquet files and the planted groups as JSON, in a process of
    its own: the driver's peak RSS is then the pipeline's, not the generator's."""
    import pyarrow as pa

    from benchmarks.balance import synthetic_pairs
    from realsyn.schemas import spec

    n, d, tmp = args.images, args.dim, args.tmp
    n_sent = 4 * n
    rng = np.random.default_rng(n)
    # silver.images: every image kept, with a planted pHash and a size (the rule keeps the largest).
    phash, p_groups = planted_phashes(rng, n, n // 100, min(args.hot, n // 5))
    width = rng.integers(200, 1000, n).astype(np.int32)
    height = rng.integers(200, 1000, n).astype(np.int32)
    ids = np.array(image_ids(n))
    cols = {f.name: pa.nulls(n, pa.string()) for f in spec("silver.images").schema.fields}
    cols.update({"url_id": ids, "url": ids, "image_id": ids, "width": width, "height": height,
                 "phash": phash, "status": np.array(["kept"] * n)})
    cols["bytes"], cols["http_status"] = pa.nulls(n, pa.binary()), pa.nulls(n, pa.int32())
    write_parquet(pa.table(cols), f"{tmp}/images.parquet")
    img = topic_vectors(rng, n, d, max(50, n // 2000))
    s_groups_img = plant_copies(rng, img, n // 100)
    sent = topic_vectors(rng, n_sent, d, max(50, n_sent // 2000))
    s_groups_sent = plant_copies(rng, sent, n_sent // 100)
    for name, key, keys, v in (("silver.image_embeddings", "image_id", ids, img),
                               ("silver.sentence_embeddings", "sentence_id", np.array(image_ids(n_sent)), sent)):
        m = len(v)
        write_parquet(pa.table({key: keys, "embedding": blobs(v), "model": ["bench@1"] * m,
                                "dim": pa.array(np.full(m, d, np.int32)), "dtype": ["float32"] * m,
                                "status": ["kept"] * m, "reason": pa.nulls(m, pa.string())}), f"{tmp}/{name}.parquet")
    del img, sent
    pi, pt = synthetic_pairs(rng, n, d, max(50, n // 4000))
    write_parquet(pa.table({"image_id": ids, "embedding": blobs(pi), "text_vec": blobs(pt),
                            "model": pa.nulls(n, pa.string())}), f"{tmp}/pairs.parquet")
    area = (width.astype(np.int64) * height).tolist()
    with open(f"{tmp}/planted.json", "w") as f:
        json.dump({"phash": p_groups, "image": s_groups_img, "sentence": s_groups_sent, "area": area}, f)


def reset_peak_rss(pid: int | str = "self") -> None:
    """Start VmHWM again from the current RSS (Linux clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def child(args) -> dict:
    import pyarrow.parquet as pq

    from benchmarks.balance import spark_side
    from realsyn.jobs.balance import PAIRS, BalanceParams, pairs_layout
    from realsyn.jobs.core.config import load_config
    from realsyn.jobs.lib.perceptual_dedup import perceptual_representatives
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.session import get_spark
    from realsyn.jobs.core.tables import TableStore
    from realsyn.schemas import spec

    n, d, tmp = args.images, args.dim, args.tmp
    cfg = load_config("local", overrides=config_overrides(args))
    spark = get_spark(cfg)
    store = TableStore(spark, cfg)
    bp = BalanceParams.from_config(cfg)
    for name, path in (("silver.images", "images"), ("silver.image_embeddings", "silver.image_embeddings"),
                       ("silver.sentence_embeddings", "silver.sentence_embeddings")):
        store.write(name, spark.read.schema(spec(name).schema).parquet(f"{tmp}/{path}.parquet"))
    store.write(PAIRS, pairs_layout(spark.read.parquet(f"{tmp}/pairs.parquet"), bp.seed))
    jvm_pid = spark.sparkContext._gateway.proc.pid
    reset_peak_rss()          # from here on: the stages' peak, not the session start or the loads
    reset_peak_rss(jvm_pid)

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    candidates = store.read("silver.images").select("image_id", "phash", "width", "height")
    perceptual_representatives(candidates, cfg.get("images.phash_max_hamming"),
                               cfg.get("images.phash_bucket_max")).write.mode("overwrite").parquet(f"{tmp}/reps")
    seconds["perceptual"] = time.perf_counter() - t0
    result = run_stages(cfg, ["semantic_neighbours", "semantic_dedup", "cluster", "retrieve"], force=True,
                        say=lambda *_: None)
    seconds.update({o.name: o.seconds for o in result.outcomes})
    seconds["balance"], _ = spark_side(store, d, bp)
    seconds["dedup"] = seconds["perceptual"] + seconds["semantic_neighbours"] + seconds["semantic_dedup"]
    python_rss, jvm_rss = peak_rss_mb(), peak_rss_mb(jvm_pid)
    with open(f"{tmp}/planted.json") as f:
        planted = json.load(f)
    p_groups, s_groups_img, s_groups_sent = planted["phash"], planted["image"], planted["sentence"]
    area = np.array(planted["area"])
    ids = np.array(image_ids(n))

    # Recall of the planted groups (untimed; the planted members only come back).
    reps = pq.read_table(f"{tmp}/reps").to_pandas().set_index("image_id")["rep"].to_dict()
    recall: dict[str, float] = {}
    hit = total = 0
    for g in p_groups:
        want = ids[min(g, key=lambda i: (-area[i], ids[i]))]
        hit += sum(reps.get(ids[i]) == want for i in g)
        total += len(g)
    recall["perceptual"] = hit / total
    for table, key, groups, rank in (("silver.image_dedup", "image_id", s_groups_img, lambda i: (-area[i], i)),
                                     ("silver.sentence_dedup", "sentence_id", s_groups_sent, None)):
        members = sorted({i for g in groups for i in g})
        keys = [f"{i:064x}" for i in members]
        wanted = spark.createDataFrame([(k,) for k in keys], f"{key} string")
        got = {r[key]: (r["duplicate_of"] or r[key]) for r in store.read(table).join(wanted, key).collect()}
        k_hit = k_total = 0
        for g in groups:
            want = f"{min(g, key=rank) if rank else min(g):064x}"
            k_hit += sum(got.get(f"{i:064x}") == want for i in g)
            k_total += len(g)
        recall[table.split(".")[1]] = k_hit / k_total
        hit, total = hit + k_hit, total + k_total
    out = {"images": n, "sentences": 4 * n, "seconds": seconds, "recall": hit / total, "recall_by_kind": recall,
           "python_rss_mb": python_rss, "jvm_rss_mb": jvm_rss}
    spark.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1_000_000, help="N; sentences are 4N")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--hot", type=int, default=100_000, help="members of the hot pHash group (at most N/5)")
    ap.add_argument("--kmeans-sample", type=int, default=100_000)
    ap.add_argument("--local", action="store_true", help="local[2] instead of a standalone cluster")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(args)
        return
    if args.child:
        print("CHILD " + json.dumps(child(args)), flush=True)
        return

    from tests.standalone_cluster import StandaloneCluster
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = None if args.local else StandaloneCluster(Path(tmp) / "cluster", cores=2, memory="8g").start()
        try:
            for f in args.factors:
                work = Path(tmp) / f"n{f}"
                work.mkdir()
                cmd = [sys.executable, __file__, "--child", "--images", str(args.images * f), "--dim", str(args.dim),
                       "--hot", str(args.hot), "--kmeans-sample", str(args.kmeans_sample), "--tmp", str(work),
                       "--master", cluster.master_url if cluster else "local[2]"]
                env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}",
                       "SPARK_LOCAL_IP": "127.0.0.1"}
                gen = subprocess.run([*cmd[:2], "--generate", *cmd[3:]], env=env, capture_output=True, text=True)
                if gen.returncode:
                    sys.exit(f"generating size {args.images * f} failed:\n{gen.stderr[-5000:]}")
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = next((x for x in done.stdout.splitlines() if x.startswith("CHILD ")), None)
                if done.returncode or line is None:
                    sys.exit(f"size {args.images * f} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
                runs.append(json.loads(line[6:]))
                r = runs[-1]
                print(f"N x{f}: {r['images']:,} images, {r['sentences']:,} sentences: "
                      + " ".join(f"{k}={v:.1f}s" for k, v in r["seconds"].items())
                      + f"; driver peak RSS python={r['python_rss_mb']:.0f} MiB jvm={r['jvm_rss_mb']:.0f} MiB"
                      + f"; planted recall={r['recall']:.4f} ("
                      + " ".join(f"{k}={v:.4f}" for k, v in r["recall_by_kind"].items()) + ")", flush=True)
                shutil.rmtree(work, ignore_errors=True)
        finally:
            if cluster:
                cluster.stop()
    ratios = {}
    for stage in STAGES:
        steps = [runs[i + 1]["seconds"][stage] / runs[i]["seconds"][stage] for i in range(len(runs) - 1)]
        print(f"{stage}: " + " ".join(f"x{args.factors[i + 1]}/x{args.factors[i]}={s:.2f}" for i, s in enumerate(steps)))
        ratios[stage] = max(steps) if steps else float("nan")
    rss = max(runs[-1]["python_rss_mb"] / runs[0]["python_rss_mb"], runs[-1]["jvm_rss_mb"] / runs[0]["jvm_rss_mb"])
    print(f"RESULT dedup_scaling_2x={ratios['dedup']:.2f} cluster_scaling_2x={ratios['cluster']:.2f} "
          f"retrieve_scaling_2x={ratios['retrieve']:.2f} balance_scaling_2x={ratios['balance']:.2f} "
          f"driver_rss_ratio_4x={rss:.2f} planted_dup_recall={min(r['recall'] for r in runs):.4f}")


if __name__ == "__main__":
    main()
