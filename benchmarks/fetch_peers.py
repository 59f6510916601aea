"""The fetch against img2dataset, on the same realistic web, URLs and cores, side by side.

The web (benchmarks/realistic_web.py) runs in a process of its own on 127.0.0.1: 32 hosts,
Zipf-skewed, lognormal latency (median 150 ms, p99 2 s), 404s, 5xx, held requests, drips and
resets, images of tens to hundreds of KB and a few of several MB. Both sides get the same
list, the same 10 s timeout and no retries (the web's failures are permanent per URL), and
both start cold (their processes and Python workers included).

- img2dataset (pinned, installed by this script into a virtualenv of its own, never into the
  project's lock) with its README's advice for this machine: one process per core and its
  default 256 download threads each. It writes the original bytes (`--resize_mode no
  --skip_reencode True`, so it decodes each image to check it and writes it as fetched) to
  WebDataset shards with a sha256 per image.
- realsyn: the extract_images stage (ingest is run first and not timed) on local[N]: fetch,
  store each response with its sha256 in Delta, decode (size, format, pHash), perceptual
  dedup and the ledger.

Images/s counts images fetched whole and decoded. CPU seconds are every process's on each
side (the web's own process excluded). Prints
`RESULT fetch_images_per_s=... img2dataset_images_per_s=... fetch_over_img2dataset=...
cpu_s_per_image_ratio=... fetch_success=... img2dataset_success=... best_success=...`
(cpu_s_per_image_ratio: realsyn's CPU seconds per image over img2dataset's). `--urls 2000`
is the quick mode `make bench` runs; the issue's size is 20,000.
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.realistic_web import RealisticWeb  # noqa: E402

IMG2DATASET = "img2dataset==1.47.0"
PEER_VENV = Path.home() / ".cache" / "realsyn" / "bench-img2dataset"
TIMEOUT_S = 10


def peer_python() -> Path:
    """The peer's venv, created and filled at the pinned version when missing or stale."""
    stamp = PEER_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != IMG2DATASET:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", IMG2DATASET], check=True)
        stamp.write_text(IMG2DATASET)
    return PEER_VENV / "bin" / "img2dataset"


def serve(seed: int, base_port: int, max_seconds: float, ready, stop) -> None:
    with RealisticWeb(seed=seed, base_port=base_port, max_seconds=max_seconds):
        ready.set()
        stop.wait(max_seconds)


def tree_cpu_by_command(root: int, exclude: set[int]) -> dict[str, float]:
    """user + system seconds of a process and its descendants (with their reaped children),
    read from /proc, by command name (java: Spark's JVM; python: the driver and workers);
    `exclude` prunes subtrees (the web's process)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        pid = int(text.split(" ", 1)[0])
        names[pid] = "java" if "java" in text.split(" ", 2)[1] else "python"
        fields = text.rsplit(")", 1)[1].split()
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    tick = os.sysconf("SC_CLK_TCK")
    total: dict[str, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in exclude or pid not in stats:
            continue
        f = stats[pid]
        name = names.get(pid, "?")
        total[name] = total.get(name, 0.0) + sum(int(v) for v in f[11:15]) / tick   # utime, stime, cutime, cstime
        todo += children.get(pid, [])
    return total


def run_img2dataset(urls: list[str], out: Path, cores: int) -> dict:
    exe = peer_python()
    (out / "urls.txt").write_text("\n".join(urls) + "\n")
    args = [str(exe), "--url_list", str(out / "urls.txt"), "--input_format", "txt", "--output_folder",
            str(out / "i2d"), "--output_format", "webdataset", "--processes_count", str(cores),
            "--thread_count", "256", "--resize_mode", "no", "--skip_reencode", "True", "--timeout", str(TIMEOUT_S),
            "--retries", "0", "--enable_wandb", "False", "--number_sample_per_shard", "1000",
            "--compute_hash", "sha256", "--disallowed_header_directives", "[]"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"img2dataset failed: {done.stderr[-2000:]}")
    stats = [json.loads(Path(p).read_text()) for p in glob.glob(str(out / "i2d" / "*_stats.json"))]
    ok = sum(s["successes"] for s in stats)
    return {"wall": wall, "ok": ok, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "status": {k: v for s in stats for k, v in s.get("status_dict", {}).items()}}


def run_realsyn(urls: list[str], out: Path, cores: int, server_pid: int, sets: list[str]) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from realsyn.jobs.core.config import load_config
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.tables import TableStore
    from realsyn.jobs.core.session import get_spark
    per_doc = 4
    docs = [{"images": [None, *urls[i:i + per_doc]], "texts": ["A page with pictures.", *[None] * len(urls[i:i + per_doc])],
             "metadata": json.dumps([None] * (1 + len(urls[i:i + per_doc]))),
             "general_metadata": json.dumps({"url": f"https://pages.test/{i}"})} for i in range(0, len(urls), per_doc)]
    schema = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                        ("metadata", pa.string()), ("general_metadata", pa.string())])
    (out / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(docs, schema=schema), out / "in" / "docs.parquet")
    cfg = load_config("local", overrides=[
        f"run.work_dir={out / 'work'}", f"run.input={out / 'in'}", f"spark.master=local[{cores}]",
        "spark.progress_bar=false", "mlflow.enabled=false", "fetch.allow_loopback=true", "fetch.retries=0",
        f"fetch.read_timeout_s={TIMEOUT_S}", "sentences.perplexity_filter=false", *sets])
    run_stages(cfg, ["ingest"], say=lambda *_: None)               # the session and ingest are not timed
    me = os.getpid()
    cpu0 = tree_cpu_by_command(me, {server_pid})
    t0 = time.perf_counter()
    result = run_stages(cfg, ["extract_images"], say=print)
    wall = time.perf_counter() - t0
    cpu1 = tree_cpu_by_command(me, {server_pid})
    split = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    print("realsyn CPU-s by process kind: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(split.items())))
    cpu = sum(split.values())
    stage_s = result.outcomes[0].seconds
    spark = get_spark(cfg)
    tables = TableStore(spark, cfg)
    fetched = tables.read("silver.image_fetches").where("bytes is not null").count()
    decoded = tables.read("silver.image_decodes").where("decode_reason is null").count()
    reasons = {r["fetch_reason"]: r["count"] for r in
               tables.read("silver.image_fetches").groupBy("fetch_reason").count().collect()}
    return {"wall": stage_s, "wall_with_runner": wall, "ok": decoded, "fetched": fetched, "cpu": cpu, "status": reasons}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=2000, help="URLs in the list (the issue's size: 20000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--base-port", type=int, default=18200)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="realsyn config overrides")
    ap.add_argument("--skip-peer", action="store_true", help="run realsyn's side only (no RESULT line)")
    args = ap.parse_args()
    web = RealisticWeb(seed=args.seed, base_port=args.base_port)
    urls = web.url_list(args.urls)
    best = web.best_success_rate(urls)
    ready, stop = mp.Event(), mp.Event()
    server = mp.Process(target=serve, args=(args.seed, args.base_port, 3600.0, ready, stop), daemon=True)
    server.start()
    if not ready.wait(120):
        raise RuntimeError("the web did not start")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            peer = None if args.skip_peer else run_img2dataset(urls, Path(tmp), args.cores)
            if peer:
                print(f"img2dataset: {peer['ok']} images in {peer['wall']:.1f} s, {peer['cpu']:.1f} CPU-s; {peer['status']}")
            ours = run_realsyn(urls, Path(tmp), args.cores, server.pid, args.set)
            print(f"realsyn extract_images: {ours['ok']} images ({ours['fetched']} fetched) in {ours['wall']:.1f} s "
                  f"({ours['wall_with_runner']:.1f} s with the runner's bookkeeping), {ours['cpu']:.1f} CPU-s; "
                  f"{ours['status']}")
    finally:
        stop.set()
        server.join(30)
    n = len(urls)
    if peer is None:
        print(f"realsyn alone: {ours['ok'] / ours['wall']:.1f} images/s, {ours['cpu'] / max(ours['ok'], 1) * 1000:.0f} "
              f"CPU-ms per image, success {ours['ok'] / n:.3f} of best {best:.3f}")
        return
    ours_ps, peer_ps = ours["ok"] / ours["wall"], peer["ok"] / peer["wall"]
    cpu_ratio = (ours["cpu"] / max(ours["ok"], 1)) / (peer["cpu"] / max(peer["ok"], 1))
    print(f"{n} URLs, best achievable success {best:.3f}, {args.cores} cores")
    print(f"RESULT fetch_images_per_s={ours_ps:.1f} img2dataset_images_per_s={peer_ps:.1f} "
          f"fetch_over_img2dataset={ours_ps / peer_ps:.2f} cpu_s_per_image_ratio={cpu_ratio:.2f} "
          f"fetch_success={ours['ok'] / n:.3f} img2dataset_success={peer['ok'] / n:.3f} best_success={best:.3f}")


if __name__ == "__main__":
    main()
