"""Embedding throughput: the Spark UDF against a plain torch loop over the same images and
model, in one run. Spark: local[2], one torch thread per Python worker (spark.task.cpus);
plain: one process with 2 torch threads. Models: tiny and ViT-B-32 (random init).

Both sides do the same work per image: decode, preprocess, encode, normalise and
serialise to stored bytes. Both exclude the one-time model load: the plain loop builds
its encoder before the clock starts, and Spark warms every Python worker (one task per
core) first. Spark runs the stage's own code path: mapInArrow body, Arrow batches of
one model batch (jobs.embed.arrow_batch_rows), partitions from jobs.embed.spread.

Prints `RESULT udf_images_per_s=... plain_images_per_s=... udf_over_plain=...` (ViT-B-32 numbers;
the tiny model's ratio is printed above it).
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.core.session import get_spark  # noqa: E402
from realsyn.jobs.embed import arrow_batch_rows, spread  # noqa: E402
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec, open_image  # noqa: E402
from realsyn.udfs.vector_codec import to_bytes  # noqa: E402
from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_images_arrow  # noqa: E402


def make_images(n: int) -> list[bytes]:
    from PIL import Image
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        w, h = rng.integers(160, 400, 2)
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def plain_loop(spec: EncoderSpec, blobs: list[bytes], batch: int) -> float:
    import torch
    enc = Encoder(spec)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    for i in range(0, len(blobs), batch):
        to_bytes(enc.encode_images([open_image(b) for b in blobs[i:i + batch]]), "float32")
    return time.perf_counter() - t0


def spark_udf(spark, spec: EncoderSpec, blobs: list[bytes], batch: int, tmp: str) -> float:
    df = spark.createDataFrame([(f"{i:06d}", b) for i, b in enumerate(blobs)], "image_id string, bytes binary")
    path = f"{tmp}/images.parquet"
    df.repartition(2).write.mode("overwrite").parquet(path)
    src = spark.read.parquet(path)
    parts = spark.sparkContext.defaultParallelism
    ddl = OUTPUT_DDL.format(key="image_id")
    with arrow_batch_rows(spark, batch):
        # Warm every Python worker (imports + model load, once per worker): one task per core.
        warm = spark.createDataFrame([(f"w{i}", b) for i, b in enumerate(blobs[:2 * parts])], src.schema)
        warm.repartition(parts).mapInArrow(embed_images_arrow(spec, batch, "float32"), ddl) \
            .write.mode("overwrite").format("noop").save()
        t0 = time.perf_counter()
        (spread(src, parts, len(blobs), batch).mapInArrow(embed_images_arrow(spec, batch, "float32"), ddl)
         .write.mode("overwrite").parquet(f"{tmp}/out"))
        elapsed = time.perf_counter() - t0
    out = spark.read.parquet(f"{tmp}/out")
    assert out.where("status = 'kept'").count() == len(blobs), "every image should be embedded"
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--models", default="tiny,ViT-B-32")
    args = ap.parse_args()
    blobs = make_images(args.images)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config("local", overrides=[f"run.work_dir={tmp}", "spark.master=local[2]",
                                              "spark.progress_bar=false"])
        spark = get_spark(cfg)
        for arch in args.models.split(","):
            spec = EncoderSpec(arch=arch, pretrained="", weights="", seed=42, threads=1, mixed_precision=True)
            t_plain = plain_loop(spec, blobs, args.batch)
            t_udf = spark_udf(spark, spec, blobs, args.batch, tmp)
            results[arch] = (len(blobs) / t_udf, len(blobs) / t_plain)
            print(f"{arch}: udf {results[arch][0]:.1f} img/s, plain {results[arch][1]:.1f} img/s, "
                  f"udf_over_plain={results[arch][0] / results[arch][1]:.2f}")
    udf, plain = results[args.models.split(",")[-1]]
    print(f"RESULT udf_images_per_s={udf:.1f} plain_images_per_s={plain:.1f} udf_over_plain={udf / plain:.2f}")


if __name__ == "__main__":
    main()
