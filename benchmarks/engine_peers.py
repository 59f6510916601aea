"""Model UDFs against Daft and Ray Data: the same embedding job in three engines, on the same
2 cores, images and weights.

The job: read image bytes, decode, preprocess (open_clip's eval transform), encode with
open_clip's CLIP, L2-normalise, write the vectors. Models: `tiny` (the project's tiny preset)
and ViT-B-32, both at random init: each model is built once here (seed 42) and its state dict
saved to a safetensors file that every side loads, so all three compute with the same weights.

- realsyn: the embed stage itself (`run_stages(cfg, ["embed"])`, Delta in and out) on
  local[2], one torch thread per Python worker, batch 64 (embedding.batch_size): it joins
  silver.images with silver.image_fetches for the bytes, embeds in units through its
  mapInArrow body (udfs/embed_batches.py: Pillow opens each JPEG reduced towards the model's
  input side, then the batch preprocess) and commits silver.image_embeddings (and an empty
  silver.sentence_embeddings: no sentences) to Delta. The input tables hold the same rows as
  the peers' Parquet file.
- Daft (pinned) with its docs' class-UDF pattern: `read_parquet` -> a `@daft.cls` class UDF
  (`max_concurrency=2`, `@daft.method.batch(batch_size=64)`, an embedding column) that
  decodes with Pillow and embeds -> `write_parquet`; Daft runs the 2 instances as threads.
  `--daft-decode daft` puts Daft's own `decode_image` in front instead; it then decodes while
  the models load, before its clock starts, so that variant's time leaves out part of its
  decoding.
- Ray Data (pinned): `read_parquet` -> `map_batches` with a callable class on an actor pool of
  2 (`ActorPoolStrategy(size=2)`, `num_cpus=1`, `batch_size=64`) -> `write_parquet`. Ray is
  given 3 logical CPUs: with 2 the actors hold both and the read tasks never run (a deadlock);
  the processes still share the same 2 cores.
  (benchmarks/engine_peers_worker.py has both peers and says what each does.)

Same on every side: 2 workers, 1 torch thread each, batch 64, the same open_clip and torch
(printed). Model load is excluded on every side: realsyn warms its two Python workers
(imports and model load) with a small job first, as benchmarks/embedding.py does, and runs
the stage once on 128 other rows in a warehouse of its own (the JVM's first run of the stage's
jobs: class loading, code generation); each peer worker loads its model and waits at a
barrier, and the peer's clock starts when the last worker is ready. Engine start-up
(SparkSession, ray.init) is not timed either. realsyn's time is the stage's own (its runner's
bookkeeping after it excluded). The peers read their Parquet file while the models load.

The peers live in a virtualenv of their own (~/.cache/realsyn/bench-engines, made by this
script when missing or when the pins change; never in requirements.lock). To avoid a second
torch download it reuses the project venv's torch, open_clip and Pillow: a .pth file there
appends the project venv's site-packages to sys.path, after the peers' own site-packages, so
the peers' own dependencies (numpy, pyarrow, pandas, ...) win. A peer that cannot be installed
at its pin is reported with pip's error and left out; nothing stands in for it.

Correctness: every side must return one vector per image, and each peer's vectors must agree
with realsyn's (cosine, printed; > 0.999 expected for ViT-B-32, where realsyn decodes at full
size too; for tiny realsyn opens JPEGs at a reduced DCT scale, which moves pixels a little).

CPU-ms per image are printed too (every process of each side over its timed window: the JVM
and Python workers; Ray's daemons and actors; Daft's process), since a shared host's load moves
the wall times.

Prints per model `RESULT model=<m> realsyn_images_per_s=... daft_images_per_s=...
ray_images_per_s=... realsyn_over_best_peer=... <side>_cpu_ms_per_image=...`, ViT-B-32 last,
then its line again in the issue's form (without `model=` and the CPU figures). The default
is 1,000 images per model; `--quick` (128) is the size meant for `make bench`; `--profile`
adds where realsyn's time goes (the stage's own progress lines, its mapInArrow body alone,
and the per-image phases). `--set KEY=VALUE` overrides realsyn's config.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.embedding import make_images  # noqa: E402
from benchmarks.engine_peers_worker import CpuWindow  # noqa: E402

PINS = {"daft": "daft==0.7.26", "ray": "ray[data]==2.60.0"}
PEER_VENV = Path.home() / ".cache" / "realsyn" / "bench-engines"
WORKER = Path(__file__).resolve().with_name("engine_peers_worker.py")
SEED = 42


def peer_python() -> tuple[Path, dict[str, str]]:
    """The peers' venv, made at the pinned versions when missing or stale; returns its
    Python and {engine: pip's error} for the peers that could not be installed."""
    stamp = PEER_VENV / ".installed"
    want = " ".join(PINS.values())
    lines = stamp.read_text().splitlines() if stamp.exists() else []
    if not lines or lines[0] != want:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        pip = [str(PEER_VENV / "bin" / "pip"), "install", "-q"]
        failed: dict[str, str] = {}
        if subprocess.run([*pip, *PINS.values()], capture_output=True, text=True).returncode != 0:
            for engine, pin in PINS.items():     # one at a time, to keep the one that installs
                done = subprocess.run([*pip, pin], capture_output=True, text=True)
                if done.returncode != 0:
                    failed[engine] = (done.stderr.strip() or done.stdout.strip())[-1500:]
        stamp.write_text(want + "\n" + json.dumps(failed))
        lines = stamp.read_text().splitlines()
    python = PEER_VENV / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    pth = Path(site) / "realsyn-project-venv.pth"
    ours = sysconfig.get_paths()["purelib"]    # torch, open_clip, Pillow: the project venv's
    if not pth.exists() or pth.read_text().strip() != ours:
        pth.write_text(ours + "\n")
    return python, json.loads(lines[1])


def build_weights(arch: str, folder: Path) -> tuple[Path, int, int]:
    """The model at random init (seed 42) saved as folder/clip/model.safetensors;
    returns (file, input side, embedding dim)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from realsyn.udfs.clip_encoder import TINY, clip_geometry
    torch.manual_seed(SEED)
    if arch == "tiny":
        from open_clip.model import CLIP
        model = CLIP(**TINY)
        size, dim = TINY["vision_cfg"]["image_size"], TINY["embed_dim"]
    else:
        model = open_clip.create_model(arch, pretrained=None)
        size, dim = clip_geometry(model, arch)
    file = folder / "clip" / "model.safetensors"
    file.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(file))
    return file, size, dim


def write_input(blobs: list[bytes], path: Path, row_group: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"image_id": [f"{i:06d}" for i in range(len(blobs))], "bytes": pa.array(blobs, pa.binary())})
    pq.write_table(table, path, row_group_size=row_group)


def read_vectors(table, dim: int) -> dict[str, np.ndarray]:
    """image_id -> vector from a peer's Parquet (a list or fixed-size-list column)."""
    import pyarrow.compute as pc
    emb = table.column("embedding").combine_chunks()
    if hasattr(emb, "storage"):
        emb = emb.storage
    flat = np.asarray(pc.list_flatten(emb), dtype=np.float32).reshape(-1, dim)
    return dict(zip(table.column("image_id").to_pylist(), flat))


def run_peer(python: Path, engine: str, spec: dict, tmp: Path) -> dict:
    spec = {**spec, "engine": engine, "out": str(tmp / f"out-{engine}"), "barrier_dir": str(tmp / f"barrier-{engine}")}
    tmp.mkdir(parents=True, exist_ok=True)
    spec_file = tmp / f"spec-{engine}.json"
    spec_file.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    done = subprocess.run([str(python), str(WORKER), str(spec_file)], capture_output=True, text=True,
                          env={**env, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                               "DAFT_ANALYTICS_ENABLED": "0", "DO_NOT_TRACK": "1"}, cwd=tmp)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PEER ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"{engine} failed ({done.returncode}): {(done.stderr or done.stdout)[-3000:]}")
    import pyarrow.parquet as pq
    result = json.loads(line[5:])
    result["vectors"] = read_vectors(pq.read_table(spec["out"]), spec["dim"])
    return result


def realsyn_config(tmp: Path, arch: str, weights: Path, batch: int, threads: int, workers: int, name: str,
                   sets: tuple[str, ...] = ()):
    from realsyn.jobs.core.config import load_config
    return load_config("local", overrides=[
        f"run.work_dir={tmp / name}", f"spark.master=local[{workers}]", "spark.progress_bar=false",
        "mlflow.enabled=false", f"run.seed={SEED}", "models.preset=tiny", f"models.presets.tiny.clip={arch}",
        "models.presets.tiny.clip_pretrained=''", f"models.weights_dir={weights.parent.parent}",
        "models.weights_roles=[clip]", f"embedding.batch_size={batch}", f"models.torch_threads={threads}",
        "embedding.storage_dtype=float32", *sets])


def write_stage_inputs(spark, cfg, parquet: Path) -> None:
    """silver.images (all kept), silver.image_fetches (the bytes) and an empty silver.sentences,
    from the rows of the peers' Parquet file."""
    from pyspark.sql import functions as F

    from realsyn.jobs.core.tables import TableStore
    from realsyn.schemas import spec
    tables = TableStore(spark, cfg)
    src = spark.read.parquet(str(parquet))

    def full(name: str, df):
        fields = spec(name).schema.fields
        return df.select(*[(F.col(f.name) if f.name in df.columns else F.lit(None)).cast(f.dataType).alias(f.name)
                           for f in fields])

    tables.write("silver.image_fetches", full("silver.image_fetches", src.select(
        F.col("image_id").alias("url_id"), "bytes", "image_id", F.lit(200).alias("http_status"))))
    tables.write("silver.images", full("silver.images", src.select(
        F.col("image_id").alias("url_id"), "image_id", F.lit("kept").alias("status"))))
    tables.write("silver.sentences", full("silver.sentences", spark.createDataFrame(
        [], "sentence_id string, text string, status string")))


def warm_workers(spark, enc_spec, parquet: Path, batch: int) -> None:
    """Imports and model load in every Python worker (one task per core), untimed."""
    from realsyn.jobs.embed import arrow_batch_rows
    from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_images_arrow
    parts = spark.sparkContext.defaultParallelism
    rows = spark.read.parquet(str(parquet)).limit(2 * parts).collect()
    warm = spark.createDataFrame(rows, "image_id string, bytes binary").repartition(parts)
    with arrow_batch_rows(spark, batch):
        warm.mapInArrow(embed_images_arrow(enc_spec, batch, "float32"), OUTPUT_DDL.format(key="image_id")) \
            .write.mode("overwrite").format("noop").save()


def run_realsyn(tmp: Path, arch: str, weights: Path, parquet: Path, warm: Path, args, dim: int,
                first: bool) -> dict:
    from realsyn.jobs.core.models import weights_identity
    from realsyn.jobs.core.params import from_config
    from realsyn.udfs.clip_encoder import EncoderSpec
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.session import get_spark
    from realsyn.jobs.core.tables import TableStore
    from realsyn.udfs.vector_codec import from_bytes
    cfg = realsyn_config(tmp, arch, weights, args.batch, args.threads, args.workers, f"realsyn-{arch}", args.set)
    spark = get_spark(cfg)
    write_stage_inputs(spark, cfg, parquet)
    enc_spec = from_config(EncoderSpec, cfg)
    # Untimed warm-up: the driver's hash of the weights (cached), every Python worker's imports
    # and model, and one run of the stage on a few rows in a warehouse of its own (the JVM's
    # first run of the stage's Spark and Delta jobs: class loading, code generation).
    weights_identity({"clip": enc_spec.weights})
    warm_workers(spark, enc_spec, warm, args.batch)
    if first:
        warm_cfg = realsyn_config(tmp, arch, weights, args.batch, args.threads, args.workers, f"realsyn-warm-{arch}",
                                  args.set)
        write_stage_inputs(spark, warm_cfg, warm)
        t0 = time.perf_counter()
        run_stages(warm_cfg, ["embed"], say=lambda *_: None)
        print(f"{arch}: realsyn warm-up: the stage's first run in this session, on {2 * args.batch} images, "
              f"{time.perf_counter() - t0:.1f} s (not timed)")
    log: list[str] = []
    t0, window = time.perf_counter(), CpuWindow(os.getpid()).start()
    result = run_stages(cfg, ["embed"], say=lambda text: log.append(f"{time.perf_counter() - t0:6.1f} s  {text}"))
    cpu = window.stop()        # the driver, the JVM and the Python workers
    seconds = result.outcomes[0].seconds
    rows = TableStore(spark, cfg).read("silver.image_embeddings").where("status = 'kept'") \
        .select("image_id", "embedding").collect()
    vectors = from_bytes([r["embedding"] for r in rows], dim)
    return {"seconds": seconds, "vectors": dict(zip((r["image_id"] for r in rows), vectors)),
            "wall_with_runner": result.seconds, "log": log, "cpu_s": cpu}


def realsyn_body(tmp: Path, arch: str, weights: Path, parquet: Path, args) -> float:
    """The stage's mapInArrow body alone over a Delta table of (image_id, bytes), vectors to
    Delta (the stage's join, units and bookkeeping left out); workers already warm."""
    from realsyn.jobs.embed import arrow_batch_rows, spread
    from realsyn.jobs.core.params import from_config
    from realsyn.udfs.clip_encoder import EncoderSpec
    from realsyn.jobs.core.session import get_spark
    from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_images_arrow
    cfg = realsyn_config(tmp, arch, weights, args.batch, args.threads, args.workers, f"realsyn-{arch}")
    spark = get_spark(cfg)
    src_path = str(tmp / f"body-{arch}" / "in")
    spark.read.parquet(str(parquet)).write.format("delta").mode("overwrite").save(src_path)
    src = spark.read.format("delta").load(src_path)
    n, parts = src.count(), spark.sparkContext.defaultParallelism
    enc_spec = from_config(EncoderSpec, cfg)
    warm_workers(spark, enc_spec, parquet, args.batch)   # Spark ends Python workers idle for a minute
    t0 = time.perf_counter()
    with arrow_batch_rows(spark, args.batch):
        (spread(src, parts, n, args.batch).mapInArrow(embed_images_arrow(enc_spec, args.batch, "float32"),
                                                     OUTPUT_DDL.format(key="image_id"))
         .write.format("delta").mode("overwrite").save(str(tmp / f"body-{arch}" / "out")))
    return time.perf_counter() - t0


def phases(arch: str, weights: Path, blobs: list[bytes], batch: int) -> str:
    """Per-image milliseconds of each phase in this process, one torch thread: realsyn's
    reduced open + batch preprocess against a full decode + open_clip's per-image transform."""
    import io

    import torch
    from PIL import Image

    from realsyn.udfs.clip_encoder import Encoder, EncoderSpec, open_image
    enc = Encoder(EncoderSpec(arch=arch, pretrained="", weights=str(weights), seed=SEED, threads=1, mixed_precision=False))
    torch.set_num_threads(1)
    sample = blobs[:max(batch, min(len(blobs), 4 * batch))]
    n = len(sample)

    def ms(fn) -> tuple[float, object]:
        t0 = time.perf_counter()
        out = fn()
        return (time.perf_counter() - t0) * 1000 / n, out

    t_open, imgs = ms(lambda: [open_image(b, enc.image_size) for b in sample])
    t_pre, tensors = ms(lambda: [enc.preprocess_batch(imgs[i:i + batch]) for i in range(0, n, batch)])
    t_full, full = ms(lambda: [Image.open(io.BytesIO(b)).convert("RGB") for b in sample])
    t_pre_clip, _ = ms(lambda: [torch.stack([enc.preprocess(im) for im in full[i:i + batch]])
                                for i in range(0, n, batch)])
    with torch.inference_mode():
        t_enc, _ = ms(lambda: [enc.model.encode_image(t) for t in tensors])
    return (f"per image, 1 thread: realsyn open (reduced) {t_open:.2f} ms + batch preprocess {t_pre:.2f} ms; "
            f"full decode {t_full:.2f} ms + open_clip transform {t_pre_clip:.2f} ms; encode {t_enc:.2f} ms")


def agreement(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[int, float, float]:
    """(shared rows, min cosine, mean cosine) over the images both sides embedded."""
    keys = sorted(set(ref) & set(other))
    a = np.stack([ref[k] for k in keys])
    b = np.stack([other[k] for k in keys])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return len(keys), float(cos.min()), float(cos.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=None, help="images per model (default 1000; --quick: 128)")
    ap.add_argument("--quick", action="store_true", help="the small size `make bench` runs")
    ap.add_argument("--models", default="tiny,ViT-B-32")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="Spark cores, Daft instances, Ray actors")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--peers", default="daft,ray")
    ap.add_argument("--daft-decode", choices=("pil", "daft"), default="pil",
                    help="Daft decodes in its class UDF with Pillow (as the other sides) or with decode_image")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="realsyn config overrides")
    ap.add_argument("--profile", action="store_true", help="also time realsyn's body alone and the phases")
    args = ap.parse_args()
    n = args.images or (128 if args.quick else 1000)
    wanted = [p for p in args.peers.split(",") if p]
    python, failed = peer_python()
    for engine, error in failed.items():
        print(f"{engine}: could not be installed at {PINS[engine]}, left out:\n{error}")
    peers = [p for p in wanted if p not in failed]
    import open_clip
    import torch
    print(f"{n} images, batch {args.batch}, {args.workers} workers x {args.threads} torch thread(s); "
          f"realsyn side: torch {torch.__version__}, open_clip {open_clip.__version__}")
    blobs = make_images(n)
    lines: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        parquet = tmp / "images.parquet"
        write_input(blobs, parquet, row_group=4 * args.batch)
        warm = tmp / "warm.parquet"
        write_input(blobs[:2 * args.batch], warm, row_group=4 * args.batch)
        for i, arch in enumerate(args.models.split(",")):
            weights, size, dim = build_weights(arch, tmp / f"weights-{arch}")
            spec = {"input": str(parquet), "arch": arch, "weights": str(weights), "image_size": size, "dim": dim,
                    "batch": args.batch, "workers": args.workers, "threads": args.threads,
                    "daft_decode": args.daft_decode}
            if arch == "tiny":
                from realsyn.udfs.clip_encoder import TINY
                spec["tiny_cfg"] = TINY
            rates: dict[str, float] = {}
            outputs: dict[str, dict[str, np.ndarray]] = {}
            cpu_ms: dict[str, float] = {}
            print(f"{arch}: load average before realsyn {os.getloadavg()[0]:.1f}")
            ours = run_realsyn(tmp, arch, weights, parquet, warm, args, dim, first=i == 0)
            rates["realsyn"] = len(ours["vectors"]) / ours["seconds"]
            cpu_ms["realsyn"] = ours["cpu_s"] * 1000 / n
            print(f"{arch}: realsyn embed stage {len(ours['vectors'])} vectors in {ours['seconds']:.1f} s "
                  f"({ours['wall_with_runner']:.1f} s with the runner) = {rates['realsyn']:.1f} images/s; "
                  f"{cpu_ms['realsyn']:.0f} CPU-ms per image (with the runner)")
            for engine in peers:
                print(f"{arch}: load average before {engine} {os.getloadavg()[0]:.1f}")
                peer = run_peer(python, engine, spec, tmp / arch)
                rates[engine] = len(peer["vectors"]) / peer["seconds"]
                cpu_ms[engine] = peer["cpu_s"] * 1000 / n
                rows, low, mean = agreement(ours["vectors"], peer["vectors"])
                versions = ", ".join(f"{k} {v}" for k, v in peer["versions"].items())
                print(f"{arch}: {engine} {len(peer['vectors'])} vectors in {peer['seconds']:.1f} s "
                      f"({peer['seconds_with_load']:.1f} s with start-up and model load) = {rates[engine]:.1f} "
                      f"images/s; {cpu_ms[engine]:.0f} CPU-ms per image; {peer['workers']}; {versions}")
                same = peer["versions"]["torch"] == torch.__version__ and \
                    peer["versions"]["open_clip"] == open_clip.__version__
                ok = len(peer["vectors"]) == len(ours["vectors"]) == n == rows and same
                print(f"{arch}: check {engine} vs realsyn: rows {len(peer['vectors'])}/{len(ours['vectors'])}/{n}, "
                      f"cosine min {low:.5f} mean {mean:.5f}, same torch/open_clip {same} -> "
                      f"{'ok' if ok and low > 0.999 else 'rows ok, cosine < 0.999' if ok else 'MISMATCH'}")
                outputs[engine] = peer["vectors"]
            if len(outputs) == 2:
                rows, low, mean = agreement(*outputs.values())
                print(f"{arch}: check {' vs '.join(outputs)}: rows {rows}, cosine min {low:.5f} mean {mean:.5f}")
            if 2 * size <= 160:     # make_images: shorter sides from 160 px
                print(f"{arch}: (realsyn opens each JPEG at a reduced DCT scale towards the {size}-px input, "
                      "the peers at full size, so their vectors differ a little from realsyn's here)")
            if args.profile:
                print(f"{arch}: profile: the stage's own lines, seconds since it was started:")
                for text in ours["log"]:
                    print(f"    {text}")
                body = realsyn_body(tmp, arch, weights, parquet, args)
                print(f"{arch}: profile: realsyn mapInArrow body alone (Delta in and out) {n / body:.1f} images/s "
                      f"against the stage's {rates['realsyn']:.1f}")
                print(f"{arch}: profile: {phases(arch, weights, blobs, args.batch)}")
            best = max((rates[p] for p in peers), default=float("nan"))
            cols = " ".join(f"{e}_images_per_s={rates[e]:.1f}" if e in rates else f"{e}_images_per_s=nan"
                            for e in ("realsyn", "daft", "ray"))
            cpu = " ".join(f"{e}_cpu_ms_per_image={cpu_ms[e]:.0f}" for e in ("realsyn", "daft", "ray") if e in cpu_ms)
            lines.append((arch, f"{cols} realsyn_over_best_peer={rates['realsyn'] / best:.2f}", cpu))
    for arch, line, cpu in lines:
        print(f"RESULT model={arch} {line} {cpu}")
    if lines and lines[-1][0] == "ViT-B-32":
        print(f"RESULT {lines[-1][1]}")


if __name__ == "__main__":
    main()
