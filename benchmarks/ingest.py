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

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.jobs.corpora.sample_corpus import write_sample  # noqa: E402


def ingest_config(work: Path, n_docs: int):
    sample = work / f"sample-{n_docs}"
    write_sample(str(sample), n_docs=n_docs, seed=11)
    return load_config("local", overrides=[
        f"run.work_dir={work / f'w-{n_docs}'}", f"run.input={sample}/obelics/*.parquet",
        "spark.master=local[2]", "spark.progress_bar=false", "mlflow.enabled=false"])


def timed(cfg) -> float:
    t0 = time.perf_counter()
    run_stages(cfg, ["ingest"], force=True, say=lambda *_: None)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, big = ingest_config(work, args.docs), ingest_config(work, 2 * args.docs)
        timed(small)                                   # warm up the JVM, the JIT and the session
        t_n, t_2n = float("inf"), float("inf")
        for _ in range(args.repeats):                  # alternate so drift hits both sizes alike
            t_n = min(t_n, timed(small))
            t_2n = min(t_2n, timed(big))
    print(f"N={args.docs}: {t_n:.2f}s  2N={2 * args.docs}: {t_2n:.2f}s")
    print(f"RESULT ingest_docs_per_s={2 * args.docs / t_2n:.1f} scaling_2x={t_2n / t_n:.2f}")


if __name__ == "__main__":
    main()
