"""Incremental runs and resume after a kill, against the full recomputation, side by side.

A base corpus (documents linking images served by a local HTTP server that answers each
request after `--latency` seconds, as a web host does), then 10% more documents. Timed in
one run on the same machine:
- incremental: the pipeline on base + new after a run on base (only new URLs are fetched,
  only new rows embedded), against `--full-refresh` on the same input and tables;
- resume: a run SIGKILLed half-way (by the clean run's time) plus its rerun, against a
  clean run; both as `realsyn` subprocesses, JVM start included;
- edits: after those runs, a comment added to every project module of a copy of the
  repository, and `realsyn run` from that copy, against a no-change rerun from this one
  (both subprocesses): the rows the edited rerun recomputes (goal 0) and its time over the
  no-change rerun's (goal <= 1.2).

Two corpora (`--corpus`):
- world (default): the learnable world (jobs/world/corpus.py) with its teacher CLIP and
  generators trained first (`realsyn teach`, not timed), conf/world.yaml; its image URLs
  are served over HTTP. New sentences change an old image's R1 about as often as real
  text would.
- sample: the sample corpus (jobs/corpora/sample_corpus.py) on the tiny random models of
  conf/sample.yaml, whose similarities carry no meaning: a handful of "hub" sentences are
  every image's R1, so a new hub sentence remakes most synthetic texts.

Prints `RESULT incremental_over_full=... resume_over_clean=... edit_rows_recomputed=...
edit_over_nochange=...` (goals: <= 0.25, <= 1.15, 0 and <= 1.2); `--cases` picks some.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.jobs.corpora.sample_corpus import build_documents, make_images  # noqa: E402
from realsyn.jobs.world.corpus import write_world  # noqa: E402

SAMPLE_CONF = str(REPO / "conf" / "sample.yaml")
WORLD_CONF = str(REPO / "conf" / "world.yaml")
SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                    ("metadata", pa.string()), ("general_metadata", pa.string())])


class SlowHandler(SimpleHTTPRequestHandler):
    latency = 0.0

    def log_message(self, *a):
        pass

    def do_GET(self):
        time.sleep(self.latency)
        super().do_GET()


def serve(folder: Path, latency: float) -> tuple[ThreadingHTTPServer, str]:
    SlowHandler.latency = latency
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SlowHandler, directory=str(folder)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def write_corpus(root: Path, base: str, n_docs: int, n_images: int) -> tuple[Path, Path]:
    """Base documents over base images; 10% more documents over 10% new images (and some old).
    make_images returns more files than pictures (exact and near copies, bad files), so the
    split is by file: the new documents bring a tenth as many new URLs as the base has."""
    rng = random.Random(5)
    names = make_images(rng, root / "images", n_images + max(1, n_images // 10))
    cut = len(names) * 10 // 11
    old, new = [f"{base}/{n}" for n in names[:cut]], [f"{base}/{n}" for n in names[cut:]]
    docs_a = build_documents(rng, old, n_docs)
    docs_b = build_documents(rng, new + rng.sample(old, max(1, len(new) // 4)), max(1, n_docs // 10))
    for name, docs in (("part-a.parquet", docs_a), ("part-b.parquet", docs_b)):
        pq.write_table(pa.Table.from_pylist(docs, schema=SCHEMA), root / name)
    return root / "part-a.parquet", root / "part-b.parquet"


def write_world_corpus(root: Path, base: str, n_docs: int, n_images: int) -> tuple[Path, Path]:
    """The world with 10% more documents than the base; its file:// image URLs rewritten to
    the server's. The base is the first 10/11 of its (shuffled) documents, the rest come
    later: they bring the images and the descriptions only they hold."""
    world = root / "world"
    write_world(str(world), n_docs=n_docs + max(1, n_docs // 10), n_images=n_images)
    local = (world / "images").as_uri() + "/"
    docs = pq.read_table(world / "obelics" / "part-00000.parquet").to_pylist()
    for doc in docs:
        if doc["images"] is not None:
            doc["images"] = [u.replace(local, base + "/") if u else u for u in doc["images"]]
    cut = len(docs) * 10 // 11
    for name, part in (("part-a.parquet", docs[:cut]), ("part-b.parquet", docs[cut:])):
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), root / name)
    return root / "part-a.parquet", root / "part-b.parquet"


def teach(root: Path) -> None:
    """Train the world's teacher CLIP and generators (the pipeline's models), untimed."""
    args = [sys.executable, "-m", "realsyn", "--conf", WORLD_CONF, "--set", f"models.weights_dir={root / 'weights'}",
            "teach", "--world", str(root / "world")]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})


class Corpus:
    """Which corpus and config the runs use."""

    def __init__(self, name: str, root: Path):
        self.name, self.root = name, root
        self.conf = WORLD_CONF if name == "world" else SAMPLE_CONF

    def write(self, base: str, n_docs: int, n_images: int) -> tuple[Path, Path]:
        if self.name == "world":
            parts = write_world_corpus(self.root, base, n_docs, n_images)
            teach(self.root)
            return parts
        (self.root / "images").mkdir()
        return write_corpus(self.root, base, n_docs, n_images)

    def served(self) -> Path:
        return self.root / "world" / "images" if self.name == "world" else self.root / "images"

    def overrides(self, work: Path, inputs: Path) -> list[str]:
        world = self.root / "world"
        extra = [f"models.weights_dir={self.root / 'weights'}", f"fetch.file_root={world}", f"export.world={world}"] \
            if self.name == "world" else []
        return [f"run.work_dir={work}", f"run.input={inputs}/*.parquet", "spark.master=local[2]",
                "spark.progress_bar=false", "mlflow.enabled=false", "fetch.allow_loopback=true",
                "fetch.concurrency_per_task=4", "units.fetch_rows=100", *extra]


STAGE_SECONDS: dict[str, dict[str, float]] = {}


def timed_run(cfg, label: str, **kw) -> float:
    t0 = time.perf_counter()
    result = run_stages(cfg, say=lambda *_: None, **kw)
    STAGE_SECONDS[label] = {o.name: round(o.seconds, 1) for o in result.outcomes}
    return time.perf_counter() - t0


def cli(corpus: Corpus, work: Path, inputs: Path, kill_after: float | None = None, repo: Path = REPO,
        log_name: str = "") -> float:
    args = [sys.executable, "-m", "realsyn", "--conf", corpus.conf]
    for o in corpus.overrides(work, inputs):
        args += ["--set", o]
    t0 = time.perf_counter()
    with open(work.parent / f"{log_name or work.name}.log", "ab") as log:
        proc = subprocess.Popen([*args, "run"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(repo)}, cwd=repo)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"realsyn run failed; see {work.parent / (work.name + '.log')}")
    return time.perf_counter() - t0


def commented_copy(dest: Path) -> Path:
    """A copy of the repository with one comment line added at the top of every project
    module (realsyn/'s links to the code folders stay links, into the copy)."""
    shutil.copytree(REPO, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "work", "__pycache__", "*.pyc", "tests"))
    edited = 0
    for folder in ("jobs", "udfs", "schemas", "conf", "realsyn"):
        for path in (dest / folder).glob("*.py"):
            if not path.is_symlink():
                path.write_text("# a comment that changes nothing\n" + path.read_text())
                edited += 1
    print(f"edits: a comment added to {edited} modules", flush=True)
    return dest


def recomputed_rows(log: Path) -> tuple[int, int]:
    """(rows computed by unit work, stages started) from a run's console."""
    text = log.read_text()
    return (sum(int(n) for n in re.findall(r"already done, (\d+) computed", text)),
            len(re.findall(r"^\[\w+\] started", text, re.M)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=120, help="base documents")
    ap.add_argument("--images", type=int, default=200, help="base images")
    ap.add_argument("--latency", type=float, default=0.3, help="seconds the server waits before each reply")
    ap.add_argument("--corpus", choices=("world", "sample"), default="world")
    ap.add_argument("--cases", default="incremental,resume,edits", help="comma-separated cases to run")
    a = ap.parse_args()
    cases = set(a.cases.split(","))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = Corpus(a.corpus, root)
        httpd, base = serve(corpus.served(), a.latency)
        part_a, part_b = corpus.write(base, a.docs, a.images)
        inputs = root / "in"
        inputs.mkdir()
        os.link(part_a, inputs / part_a.name)
        cfg = load_config("local", [corpus.conf], corpus.overrides(root / "w", inputs))
        results["base_s"] = timed_run(cfg, "base")
        os.link(part_b, inputs / part_b.name)
        if "incremental" in cases:
            results["incremental_s"] = timed_run(cfg, "incremental")
            results["full_refresh_s"] = timed_run(cfg, "full_refresh", full_refresh=True)
        else:
            timed_run(cfg, "grown")
        if "resume" in cases:
            results["clean_s"] = t_clean = cli(corpus, root / "clean", inputs)
            results["killed_s"] = cli(corpus, root / "killed", inputs, kill_after=t_clean / 2)
            results["resume_s"] = cli(corpus, root / "killed", inputs)
        if "edits" in cases:
            results["nochange_s"] = cli(corpus, root / "w", inputs, log_name="nochange")
            results["edited_s"] = cli(corpus, root / "w", inputs, repo=commented_copy(root / "repo"),
                                      log_name="edited")
            rows, started = recomputed_rows(root / "edited.log")
            results["edit_rows_recomputed"], results["edit_stages_started"] = rows, started
        httpd.shutdown()
    for label, stages in STAGE_SECONDS.items():
        print(f"{label:>13}: " + " ".join(f"{n}={t}" for n, t in stages.items()))
    print(json.dumps({**{k: round(v, 1) for k, v in results.items()}, "latency_s": a.latency, "docs": a.docs,
                      "images": a.images, "corpus": a.corpus}))
    out = []
    if "incremental" in cases:
        out.append(f"incremental_over_full={results['incremental_s'] / results['full_refresh_s']:.3f}")
    if "resume" in cases:
        out.append(f"resume_over_clean={(results['killed_s'] + results['resume_s']) / results['clean_s']:.3f}")
    if "edits" in cases:
        out.append(f"edit_rows_recomputed={int(results['edit_rows_recomputed'])} "
                   f"edit_over_nochange={results['edited_s'] / results['nochange_s']:.3f}")
    print("RESULT " + " ".join(out))


if __name__ == "__main__":
    main()
