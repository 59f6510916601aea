"""Generation throughput: caption + CLIP tags + LLM fusion with the tiny models over the
same N images, through the Spark UDF and as a plain loop, in one run.

Both sides run the same per-chunk code (udfs.synthesis.synthesis_rows: decode, caption, render
the conf prompt with the image's tags, fuse, post-process; the tags, a similarity to the
vocabulary, are computed before either clock starts) with the conf's batch
size, token limits and prompt. Spark: local[2], the stage's mapInPandas body, one torch
thread per Python worker (spark.task.cpus), workers warmed (one task per core) before the
clock starts. Plain: one process, 2 torch threads, models built before the clock starts.

Prints `RESULT gen_images_per_s=... plain_images_per_s=... udf_over_plain=...`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.embedding import make_images  # noqa: E402
from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.embed import arrow_batch_rows, spread  # noqa: E402
from realsyn.jobs.generate import GenerateParams, gen_spec  # noqa: E402
from realsyn.jobs.core.session import get_spark  # noqa: E402
from realsyn.udfs.generation_models import Generators  # noqa: E402
from realsyn.udfs.synthesis import COLUMNS, OUTPUT_DDL, synthesis_rows, synthesize, top_tags  # noqa: E402

WORDS = ("a man walking a dog near the river at sunset while children play in the green field "
         "and a red car waits on the street by an old house under the trees").split()
DIM = 64   # the tiny CLIP's width; vectors here stand in for stored image embeddings


def make_inputs(n: int, n_tags: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n + n_tags, DIM)).astype("<f4")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    texts = [" ".join(rng.choice(WORDS, rng.integers(6, 20))) + "." for _ in range(n)]
    df = pd.DataFrame({"image_id": [f"{i:06d}" for i in range(n)], "embedding": [v.tobytes() for v in vecs[:n]],
                       "r1": texts, "bytes": make_images(n)})
    tags = sorted(set(WORDS))[:n_tags]
    return df, tags, vecs[n:n + len(tags)]


def plain_loop(spec, rows_fn, df: pd.DataFrame, batch: int) -> tuple[float, int]:
    import torch
    gen = Generators(dataclasses.replace(spec, threads=2))
    torch.set_num_threads(2)
    kept = 0
    t0 = time.perf_counter()
    for start in range(0, len(df), batch):
        out = pd.DataFrame(rows_fn(gen, df.iloc[start:start + batch]), columns=COLUMNS)
        kept += int((out["status"] == "kept").sum())
    return time.perf_counter() - t0, kept


def spark_udf(spark, fn, df: pd.DataFrame, batch: int, tmp: str) -> tuple[float, int]:
    spark.createDataFrame(df).repartition(2).write.mode("overwrite").parquet(f"{tmp}/gen_in")
    src = spark.read.parquet(f"{tmp}/gen_in")
    parts = spark.sparkContext.defaultParallelism
    with arrow_batch_rows(spark, batch):
        # Warm every Python worker (imports + both models, once per worker): one task per core.
        warm = spark.createDataFrame(df.iloc[:parts]).repartition(parts)
        warm.mapInPandas(fn, OUTPUT_DDL).write.mode("overwrite").format("noop").save()
        t0 = time.perf_counter()
        spread(src, parts, len(df), batch).mapInPandas(fn, OUTPUT_DDL).write.mode("overwrite").parquet(f"{tmp}/gen_out")
        elapsed = time.perf_counter() - t0
    out = spark.read.parquet(f"{tmp}/gen_out")
    assert out.count() == len(df), "one output row per image"
    return elapsed, out.where("status = 'kept'").count()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--tags", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config("local", overrides=[f"run.work_dir={tmp}", "spark.master=local[2]",
                                              "spark.progress_bar=false", "models.preset=tiny"])
        spec, batch = gen_spec(GenerateParams.from_config(cfg)), cfg.get("generation.batch_size")
        df, tags, tag_vecs = make_inputs(args.images, args.tags, cfg.get("run.seed"))
        vecs = np.stack([np.frombuffer(b, "<f4") for b in df["embedding"]])
        df["tags"] = top_tags(vecs, tag_vecs, tags, cfg.get("generation.tag_top_m"), cfg.get("generation.tag_min_score"))
        template = cfg.get("generation.prompt_template")
        t_plain, kept_plain = plain_loop(spec, synthesis_rows(template), df, batch)
        spark = get_spark(cfg)
        t_udf, kept_udf = spark_udf(spark, synthesize(spec, template, batch), df, batch, tmp)
    udf, plain = len(df) / t_udf, len(df) / t_plain
    print(f"images={len(df)} batch={batch} kept: udf {kept_udf}, plain {kept_plain}")
    print(f"RESULT gen_images_per_s={udf:.2f} plain_images_per_s={plain:.2f} udf_over_plain={udf / plain:.2f}")


if __name__ == "__main__":
    main()
