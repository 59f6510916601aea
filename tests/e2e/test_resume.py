"""Kill-safe and retryable fetching, counted at a real HTTP server on loopback: a driver
SIGKILLed mid-fetch resumes without asking for a committed URL again, and `realsyn refetch`
asks again for exactly the URLs that failed for the named reasons."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import make_config
from tests.e2e.test_cli import BASE, ENV, realsyn
from tests.e2e.test_faults import content_hash
from tests.fuzz_corpus import SCHEMA, doc
from tests.http_fixture import Handler, Server

N_URLS = 100   # more than the first unit at default unit settings (16 rows per task slot)
TEXT = "A fisherman repairs the wooden boat near the harbor at sunset."


@pytest.fixture(scope="module")
def server():
    with Server() as srv:
        yield srv


def write_corpus(root: Path, base: str, kind: str = "pic", n: int = N_URLS) -> str:
    """Two image slots per document, each URL once: n distinct drawn pictures."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [doc(f"d{i}", [f"{base}/{kind}/{2 * i}.png", None, f"{base}/{kind}/{2 * i + 1}.png"],
                [None, f"{TEXT} Page {i}.", None]) for i in range(n // 2)]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), root / "part-0.parquet")
    return f"{root}/*.parquet"


SETTINGS = ("fetch.allow_loopback=true", "fetch.retries=0", "fetch.concurrency_per_task=2",
            "mlflow.enabled=false")
STAGES = ["ingest", "extract_images"]


def args(corpus: str, work: Path) -> list[str]:
    return [*BASE, "--work-dir", str(work), "--input", corpus, *(a for s in SETTINGS for a in ("--set", s))]


def run_here(corpus: str, work: Path) -> str:
    """The same stages in this process's Spark session (no second JVM to start); the console."""
    from realsyn.jobs.pipeline import run_stages
    lines: list[str] = []
    run_stages(make_config(work, f"run.input={corpus}", *SETTINGS), STAGES, say=lines.append)
    return "\n".join(lines)


def hits(prefix: str) -> int:
    return sum(n for path, n in Handler.hits.items() if path.startswith(prefix))


def fetched_rows(spark, work: Path) -> int:
    return spark.read.format("delta").load(str(work / "warehouse" / "silver" / "image_fetches")).count()


def test_a_killed_fetch_resumes_without_fetching_a_committed_url_again(server, spark, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", server.base)
    Handler.pic_delay_s = 0.25
    work = tmp_path / "work"
    first_unit = work / "warehouse" / "silver" / "image_fetches" / "_delta_log" / f"{0:020d}.json"
    log = tmp_path / "killed.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "realsyn", *args(corpus, work), "run",
                                 "--stages", "ingest,extract_images"],
                                stdout=fh, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    try:
        deadline = time.time() + 900
        while not first_unit.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + log.read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)   # the driver, its JVM and its Python workers
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(1.0)                            # requests of the killed run still in flight land now
    committed = fetched_rows(spark, work)
    assert 0 < committed < N_URLS, log.read_text()[-3000:]
    before = hits("/pic/")
    Handler.pic_delay_s = 0.0
    resumed = run_here(corpus, work)     # the rerun; in this process, to spare a JVM start
    assert hits("/pic/") - before == N_URLS - committed, resumed
    assert f"{committed} already done" in resumed

    clean = tmp_path / "clean"
    run_here(corpus, clean)
    for table in ("silver.images", "silver.image_fetches"):
        assert content_hash(spark, work, table) == content_hash(spark, clean, table), table


def test_refetch_asks_again_only_for_the_urls_that_failed_for_those_reasons(server, spark, tmp_path, capsys):
    from realsyn.jobs.cli import main
    corpus = write_corpus(tmp_path / "corpus", server.base, kind="down", n=20)
    work = tmp_path / "work"
    Handler.down = True
    run_here(corpus, work)
    fetches = spark.read.format("delta").load(str(work / "warehouse" / "silver" / "image_fetches"))
    assert fetches.where("fetch_reason = 'http_503'").count() == 20
    Handler.down = False
    before = hits("/down/")
    # The command as typed, in this process (its Spark session is this one).
    assert main(["-v", *args(corpus, work), "refetch", "--reasons", "timeout,http_5xx",
                 "--stages", "ingest,extract_images"]) == 0
    out = capsys.readouterr().out
    assert "refetch: 20 image URL(s)" in out and hits("/down/") - before == 20, out
    images = spark.read.format("delta").load(str(work / "warehouse" / "silver" / "images"))
    assert images.where("reason = 'http_503'").count() == 0 and images.count() == 20
    assert images.where("status = 'kept' or reason like 'duplicate%'").count() == 20


def test_refetch_refuses_reasons_that_cannot_change():
    out = realsyn("refetch", "--reasons", "opt_out,timeout")
    assert out.returncode == 2 and "cannot retry opt_out" in out.stderr and "Traceback" not in out.stderr


def test_a_decode_change_and_a_fetcher_edit_decode_the_stored_bytes_again_and_fetch_nothing(
        server, spark, tmp_path, monkeypatch):
    """A fetch is an observation: what the web said is kept. A new decode limit and a code
    edit in the fetcher decide the verdicts again from the stored bytes, with no request."""
    import shutil
    from realsyn.jobs.core import module_graph
    from realsyn.jobs.pipeline import run_stages
    corpus = write_corpus(tmp_path / "corpus", server.base, kind="pic", n=20)
    work = tmp_path / "work"
    run_here(corpus, work)
    images = spark.read.format("delta").load(str(work / "warehouse" / "silver" / "images"))
    assert images.where("status = 'kept' or reason like 'duplicate%'").count() == 20
    tree = tmp_path / "src" / "realsyn"
    shutil.copytree(module_graph.ROOT, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    fetcher = tree / "udfs" / "fetch.py"
    fetcher.write_text("# a comment\n" + fetcher.read_text() + "\n_REALSYN_FETCH_EDIT = 1\n")
    monkeypatch.setattr(module_graph, "ROOT", tree)
    before = hits("/pic/")
    lines: list[str] = []
    # 160 x 120 pictures: a limit of 10,000 pixels now refuses every one of them
    run_stages(make_config(work, f"run.input={corpus}", *SETTINGS, "images.max_pixels=10000"), STAGES,
               say=lines.append)
    assert hits("/pic/") == before, "\n".join(lines)
    assert any("silver.image_fetches: 20 keys, 20 already done, 0 computed" in line for line in lines), lines
    assert any("silver.image_decodes: what decides its rows changed" in line for line in lines), lines
    images = spark.read.format("delta").load(str(work / "warehouse" / "silver" / "images"))
    reasons = {r[0]: r[1] for r in images.groupBy("reason").count().collect()}
    assert reasons == {"decompression_bomb": 20}, reasons
