"""The whole pipeline with tiny models on N and 2N sample documents, in one Spark session.

Images scale with the documents (one picture per `--docs-per-image` documents), so every stage
gets twice the work. Prints the seconds per stage for both sizes, then
`RESULT docs_per_s=... scaling_2x=...`; scaling_2x = time(2N) / time(N), goal <= 2.2.
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

SAMPLE_CONF = str(Path(__file__).resolve().parents[1] / "conf" / "sample.yaml")


def pipeline_config(work: Path, n_docs: int, docs_per_image: int):
    sample = work / f"sample-{n_docs}"
    write_sample(str(sample), n_docs=n_docs, seed=11, n_images=max(10, n_docs // docs_per_image))
    return load_config("local", [SAMPLE_CONF], [
        f"run.work_dir={work / f'w-{n_docs}'}", f"run.input={sample}/obelics/*.parquet",
        f"fetch.file_root={sample}", "spark.master=local[2]", "spark.progress_bar=false",
        "mlflow.enabled=false"])


def run(cfg) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    result = run_stages(cfg, force=True, say=lambda *_: None)
    return time.perf_counter() - t0, {o.name: o.seconds for o in result.outcomes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--docs-per-image", type=int, default=4)
    ap.add_argument("--warmup-docs", type=int, default=40,
                    help="documents of the untimed warm-up run (JVM, JIT, models); 0 skips it (make bench-quick)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.warmup_docs:                             # JVM, JIT, models and session warm
            run(pipeline_config(work, args.warmup_docs, args.docs_per_image))
        small = pipeline_config(work, args.docs, args.docs_per_image)
        big = pipeline_config(work, 2 * args.docs, args.docs_per_image)
        t_n, stages_n = run(small)
        t_2n, stages_2n = run(big)
    print(f"{'stage':<18} {'N s':>8} {'2N s':>8} {'ratio':>6}")
    for name, s in stages_n.items():
        s2 = stages_2n.get(name, 0.0)
        print(f"{name:<18} {s:>8.1f} {s2:>8.1f} {s2 / s if s else 0:>6.2f}")
    print(f"N={args.docs}: {t_n:.1f}s  2N={2 * args.docs}: {t_2n:.1f}s")
    print(f"RESULT docs_per_s={2 * args.docs / t_2n:.1f} scaling_2x={t_2n / t_n:.2f}")


if __name__ == "__main__":
    main()
