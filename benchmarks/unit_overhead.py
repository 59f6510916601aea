"""What one unit costs beyond its rows: the same rows written by write_in_units (jobs/core/units.py)
as one unit and as many, side by side in one Spark session.

The step is a real Python UDF over the rows (a sha256 per row), so each unit is a Spark job
with Python workers and one Delta commit, as the fetch, split, embed and generate units are.
Prints `RESULT unit_overhead_s=... one_unit_s=... many_units_s=... units=...`, where
unit_overhead_s = (many_units_s - one_unit_s) / (units - 1). docs/decisions.md uses it for
the rule that sizes units by time (units.target_seconds).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import functions as F  # noqa: E402

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.core.session import get_spark  # noqa: E402
from realsyn.jobs.core.stage import Context, Stage  # noqa: E402
from realsyn.jobs.core.tables import TableStore  # noqa: E402
from realsyn.jobs.core.tracking import Tracker  # noqa: E402
from realsyn.jobs.core.units import write_in_units  # noqa: E402

TABLE = "silver.image_embeddings"


class Bench(Stage):
    name = "unit_overhead"
    outputs = (TABLE,)


def step(unit, _rows):
    """One Python UDF call per row, the shape of every unit step."""
    digest = F.udf(lambda s: __import__("hashlib").sha256(s.encode()).digest(), "binary")
    return unit.select("image_id", digest("image_id").alias("embedding"), F.lit("bench").alias("model"),
                       F.lit(32).alias("dim"), F.lit("float32").alias("dtype"), F.lit("kept").alias("status"),
                       F.lit(None).cast("string").alias("reason"))


def timed(spark, cfg, rows: int, unit_rows: int, tag: str) -> tuple[float, int]:
    ctx = Context(spark=spark, _store=TableStore(spark, cfg), tracker=Tracker(cfg), stage=Bench(), run_id=tag, unit_rows=unit_rows,
                  say=lambda _: None)
    source = spark.range(rows).select(F.format_string("img%09d", "id").alias("image_id"))
    t0 = time.perf_counter()
    report = write_in_units(ctx, TABLE, source, "image_id", step, tag, unit_rows)
    return time.perf_counter() - t0, report.units


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--units", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = ["spark.master=local[2]", "spark.progress_bar=false", "mlflow.enabled=false",
                "spark.conf={spark.sql.shuffle.partitions: '4', spark.ui.enabled: 'false'}"]
        cfg = load_config("local", overrides=[f"run.work_dir={tmp}/warmup", *base])
        spark = get_spark(cfg)
        timed(spark, cfg, 2_000, 1_000, "warmup")     # JVM, Python workers and Delta warmed up
        results = {}
        for name, unit_rows in (("one", args.rows), ("many", -(-args.rows // args.units))):
            run_cfg = load_config("local", overrides=[f"run.work_dir={tmp}/{name}", *base])
            results[name] = timed(spark, run_cfg, args.rows, unit_rows, name)
            print(f"{name}: {results[name][1]} unit(s) in {results[name][0]:.1f}s", flush=True)
        (one_s, _), (many_s, units) = results["one"], results["many"]
        print(f"RESULT unit_overhead_s={(many_s - one_s) / max(1, units - 1):.2f} one_unit_s={one_s:.1f} "
              f"many_units_s={many_s:.1f} units={units}")


if __name__ == "__main__":
    main()
