"""Ingest throughput and how time grows from N to 2N documents (one Spark session, one run).

Prints `RESULT ingest_docs_per_s=... scaling_2x=...`; scaling_2x = time(2N) / time(N), goal <= 2.2.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.config import load_config  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.jobs.sample_corpus import write_sample  # noqa: E402


def timed_ingest(work: Path, n_docs: int, repeats: int) -> float:
    sample = work / f"sample-{n_docs}"
    write_sample(str(sample), n_docs=n_docs, seed=11)
    cfg = load_config("local", overrides=[
        f"run.work_dir={work / f'w-{n_docs}'}", f"run.input={sample}/obelics/*.parquet",
        "spark.master=local[2]", "spark.progress_bar=false", "mlflow.enabled=false"])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_stages(cfg, ["ingest"], force=True, say=lambda *_: None)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed_ingest(work, 200, 1)                      # warm up the JVM and the session
        t_n = timed_ingest(work, args.docs, args.repeats)
        t_2n = timed_ingest(work, 2 * args.docs, args.repeats)
    print(f"N={args.docs}: {t_n:.2f}s  2N={2 * args.docs}: {t_2n:.2f}s")
    print(f"RESULT ingest_docs_per_s={2 * args.docs / t_2n:.1f} scaling_2x={t_2n / t_n:.2f}")


if __name__ == "__main__":
    main()
