"""What an increment costs at scale, against a full run over the same rows, side by side.

Synthetic rows as in benchmarks/scale.py (planted pHash groups and a hot group, topic-mixture
image and sentence embeddings with planted near-copies): N images (A) and N * increment new
ones (B), 4x as many sentences. Two warehouses on the same Spark session:
- `incremental`: A is processed (untimed), then B is added and each step is timed;
- `full`: A+B is processed from nothing, each step timed.
Steps: perceptual groups (jobs/lib/perceptual_groups.py), semantic_neighbours + semantic_dedup
(the stages, through the runner). Bytes written by the increment are the sizes of the
Parquet files its Delta commits added (from the tables' logs), over the bytes of B's rows
as Parquet.

Prints per step incremental / full, and last
`RESULT incremental_over_full=... dedup_incr=... bytes_written_over_new=...`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import blobs, image_ids, planted_phashes, plant_copies, topic_vectors  # noqa: E402


def synthetic(n: int, d: int, hot: int, seed: int):
    """pyarrow tables for silver.images, silver.image_embeddings, silver.sentence_embeddings
    over n images (4n sentences), rows in a random order (so any prefix mixes the groups)."""
    import pyarrow as pa

    from realsyn.schemas import spec
    rng = np.random.default_rng(seed)
    phash, _ = planted_phashes(rng, n, n // 100, hot)
    width = rng.integers(200, 1000, n).astype(np.int32)
    height = rng.integers(200, 1000, n).astype(np.int32)
    ids = np.array(image_ids(n))
    cols = {f.name: pa.nulls(n, pa.string()) for f in spec("silver.images").schema.fields}
    cols.update({"url_id": ids, "url": ids, "image_id": ids, "width": width, "height": height,
                 "phash": phash, "http_status": pa.nulls(n, pa.int32()), "status": np.array(["kept"] * n)})
    images = pa.table(cols)
    img = topic_vectors(rng, n, d, max(50, n // 2000))
    plant_copies(rng, img, n // 100)
    sent = topic_vectors(rng, 4 * n, d, max(50, 4 * n // 2000))
    plant_copies(rng, sent, 4 * n // 100)

    def emb(key, keys, v):
        m = len(v)
        return pa.table({key: keys, "embedding": blobs(v), "model": ["bench@1"] * m,
                         "dim": pa.array(np.full(m, d, np.int32)), "dtype": ["float32"] * m,
                         "status": ["kept"] * m, "reason": pa.nulls(m, pa.string())})
    return {"silver.images": images, "silver.image_embeddings": emb("image_id", ids, img),
            "silver.sentence_embeddings": emb("sentence_id", np.array([f"s{i:063x}" for i in range(4 * n)]), sent)}


def added_bytes(table_dir: Path, after: int) -> int:
    """Bytes of the data files the Delta commits after version `after` added."""
    total = 0
    for log in sorted((table_dir / "_delta_log").glob("*.json")):
        if int(log.stem) <= after:
            continue
        for line in log.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                total += int(action["add"]["size"])
    return total


def last_version(table_dir: Path) -> int:
    logs = sorted((table_dir / "_delta_log").glob("*.json")) if table_dir.exists() else []
    return int(logs[-1].stem) if logs else -1


class Warehouse:
    """One work dir: its config and table store on the shared session."""

    def __init__(self, root: Path, args):
        from realsyn.jobs.core.config import load_config
        from realsyn.jobs.core.session import get_spark
        from realsyn.jobs.core.tables import TableStore
        self.cfg = load_config("local", overrides=[
            f"run.work_dir={root}", "spark.master=local[2]", "spark.progress_bar=false", "mlflow.enabled=false",
            f"kmeans.sample={args.kmeans_sample}",
            "spark.conf={spark.driver.memory: 6g, spark.sql.shuffle.partitions: '8', spark.ui.enabled: 'false'}"])
        self.spark = get_spark(self.cfg)
        self.store = TableStore(self.spark, self.cfg)

    def load(self, name: str, table, staging: str) -> None:
        import pyarrow.parquet as pq

        from realsyn.schemas import spec
        pq.write_table(table, staging, row_group_size=100_000)
        df = self.spark.read.schema(spec(name).schema).parquet(staging)
        (self.store.append if self.store.exists(name) else self.store.write)(name, df)

    def table_dirs(self) -> list[Path]:
        return [Path(self.store.path(t)) for t in OUTPUTS]

    def perceptual(self) -> float:
        from realsyn.jobs.lib.keep_rank import image_rank
        from realsyn.jobs.lib.perceptual_groups import full_groups, group_changes, needs_full
        k, bucket = self.cfg.get("images.phash_max_hamming"), self.cfg.get("images.phash_bucket_max")
        t0 = time.perf_counter()
        images = self.store.read("silver.images").where("status = 'kept'")
        cands = images.select("image_id", "phash").join(image_rank(images), "image_id").localCheckpoint()
        table = "silver.image_groups"
        if self.store.exists(table) and not needs_full(self.store.read(table), cands):
            self.store.upsert(table, group_changes(self.store.read(table), cands, k, bucket))
        else:
            self.store.write(table, full_groups(cands, k, bucket))
        return time.perf_counter() - t0

    def semantic(self) -> float:
        from realsyn.jobs.pipeline import run_stages
        result = run_stages(self.cfg, ["semantic_neighbours", "semantic_dedup"], say=lambda *_: None)
        return sum(o.seconds for o in result.outcomes)


OUTPUTS = ("silver.image_groups", "silver.image_neighbours", "silver.sentence_neighbours",
           "silver.image_dedup_centroids", "silver.sentence_dedup_centroids", "silver.image_dedup",
           "silver.sentence_dedup")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000, help="N old images (A); sentences are 4x")
    ap.add_argument("--increment", type=float, default=0.1, help="new images (B) as a share of N")
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--hot", type=int, default=2_000)
    ap.add_argument("--kmeans-sample", type=int, default=50_000)
    args = ap.parse_args()
    import pyarrow.parquet as pq

    n_new = int(args.images * args.increment)
    tables = synthetic(args.images + n_new, args.dim, args.hot, seed=7)
    cut = {"silver.images": args.images, "silver.image_embeddings": args.images,
           "silver.sentence_embeddings": 4 * args.images}
    with tempfile.TemporaryDirectory() as tmp:
        new_bytes = 0
        for name, t in tables.items():
            path = f"{tmp}/{name}.parquet"
            pq.write_table(t.slice(cut[name]), path)
            new_bytes += os.path.getsize(path)
        inc, full = Warehouse(Path(tmp) / "incremental", args), Warehouse(Path(tmp) / "full", args)
        for name, t in tables.items():
            inc.load(name, t.slice(0, cut[name]), f"{tmp}/{name}.a.parquet")
        inc.perceptual()
        inc.semantic()
        before = {d: last_version(d) for d in inc.table_dirs()}
        for name, t in tables.items():
            inc.load(name, t.slice(cut[name]), f"{tmp}/{name}.parquet")
        times = {"incremental": {"perceptual": inc.perceptual(), "semantic": inc.semantic()}}
        written = sum(added_bytes(d, before[d]) for d in inc.table_dirs() if d.exists())
        for name, t in tables.items():
            full.load(name, t, f"{tmp}/{name}.all.parquet")
        times["full"] = {"perceptual": full.perceptual(), "semantic": full.semantic()}
    ratios = {step: times["incremental"][step] / times["full"][step] for step in times["full"]}
    for step, r in ratios.items():
        print(f"{step}: incremental {times['incremental'][step]:.1f}s, full {times['full'][step]:.1f}s, ratio {r:.3f}")
    total = sum(times["incremental"].values()) / sum(times["full"].values())
    dedup = total   # every step timed here is dedup
    print(f"{args.images:,} images + {n_new:,} new ({4 * args.images:,} + {4 * n_new:,} sentences); "
          f"increment wrote {written / 2**20:.1f} MiB against {new_bytes / 2**20:.1f} MiB of new rows")
    print(f"RESULT incremental_over_full={total:.3f} dedup_incr={dedup:.3f} "
          f"perceptual_incr={ratios['perceptual']:.3f} semantic_incr={ratios['semantic']:.3f} "
          f"bytes_written_over_new={written / max(new_bytes, 1):.2f}")


if __name__ == "__main__":
    main()
