"""Unit work (jobs/core/units.py) on real Delta tables: resume after a failure mid-way, idempotent
unit commits, new keys only, stale keys removed, a new work fingerprint or --full-refresh redoes all."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from realsyn.jobs.core.stage import Context, Stage
from realsyn.jobs.core.tables import TableStore
from realsyn.jobs.core.tracking import Tracker
from realsyn.jobs.core.units import unit_count, work_fingerprint, write_in_units
from tests.conftest import make_config

TABLE = "silver.image_embeddings"


class Embedder(Stage):
    name = "embedder"
    outputs = (TABLE,)


class Boom(RuntimeError):
    pass


def make_ctx(spark, tmp_path, full_refresh=False):
    cfg = make_config(tmp_path, "mlflow.enabled=false")
    return Context(spark=spark, _store=TableStore(spark, cfg), tracker=Tracker(cfg), stage=Embedder(), run_id="r", full_refresh=full_refresh,
                   unit_rows=10, say=lambda _: None)


def source(spark, n, start=0):
    return spark.range(start, start + n).select(F.format_string("img%05d", "id").alias("image_id"))


class Computer:
    """The expensive step: counts the rows it is given (one job per unit), can fail at a unit."""

    def __init__(self, fail_at: int | None = None, tag: str = "m1"):
        self.rows_seen, self.calls, self.fail_at, self.tag = 0, 0, fail_at, tag

    def __call__(self, unit, rows):
        if self.fail_at is not None and self.calls == self.fail_at:
            raise Boom(f"killed at unit {self.calls}")
        self.calls += 1
        self.rows_seen += unit.count()
        return unit.select("image_id", F.lit(b"\x00").alias("embedding"), F.lit(self.tag).alias("model"),
                           F.lit(1).alias("dim"), F.lit("float32").alias("dtype"), F.lit("kept").alias("status"),
                           F.lit(None).cast("string").alias("reason"))


def table_rows(ctx):
    return sorted((r["image_id"], r["model"]) for r in ctx.read(TABLE).collect())


def test_unit_count_is_ceil_and_zero_for_nothing():
    assert [unit_count(n, 10) for n in (0, 1, 10, 11, 95)] == [0, 1, 1, 2, 10]


def test_work_key_follows_what_decides_the_rows():
    decode, embed = ("realsyn.udfs.decode_rows",), ("realsyn.udfs.embed_batches",)
    assert work_fingerprint(decode, {"a": 1}) == work_fingerprint(decode, {"a": 1})
    assert work_fingerprint(decode, {"a": 1}) != work_fingerprint(decode, {"a": 2})
    assert work_fingerprint(decode, {}) != work_fingerprint(embed, {})
    with pytest.raises(ValueError, match="names no realsyn module"):
        work_fingerprint(("realsyn.udfs.no_such_module",), {})


def test_a_failed_run_resumes_with_only_the_uncommitted_units(spark, tmp_path):
    ctx = make_ctx(spark, tmp_path)
    crashing = Computer(fail_at=2)
    with pytest.raises(Boom):
        write_in_units(ctx, TABLE, source(spark, 45), "image_id", crashing, "k1", 10)
    committed = ctx.read(TABLE).count()
    assert 0 < committed < 45 and crashing.calls == 2
    history = spark.sql(f"DESCRIBE HISTORY {ctx._store.identifier(TABLE)}").collect()
    assert sorted('"unit"' in (h["userMetadata"] or "") for h in history) == [True] * 2
    resumed = Computer()
    report = write_in_units(ctx, TABLE, source(spark, 45), "image_id", resumed, "k1", 10)
    assert resumed.rows_seen == 45 - committed == report.computed and report.reused == committed
    clean = make_ctx(spark, tmp_path / "clean")
    write_in_units(clean, TABLE, source(spark, 45), "image_id", Computer(), "k1", 10)
    assert table_rows(ctx) == table_rows(clean) and len(table_rows(ctx)) == 45


def test_new_keys_only_stale_keys_removed_and_a_new_work_key_redoes_all(spark, tmp_path):
    ctx = make_ctx(spark, tmp_path)
    write_in_units(ctx, TABLE, source(spark, 30), "image_id", Computer(), "k1", 10)
    grown = Computer()
    report = write_in_units(ctx, TABLE, source(spark, 35, start=5), "image_id", grown, "k1", 10)
    assert (grown.rows_seen, report.reused, report.removed) == (10, 25, 5)
    assert [k for k, _ in table_rows(ctx)] == [f"img{i:05d}" for i in range(5, 40)]
    changed = Computer(tag="m2")
    report = write_in_units(ctx, TABLE, source(spark, 35, start=5), "image_id", changed, "k2", 10)
    assert changed.rows_seen == 35 and report.reused == 0 and {m for _, m in table_rows(ctx)} == {"m2"}
    refresh = Computer(tag="m3")
    write_in_units(make_ctx(spark, tmp_path, full_refresh=True), TABLE, source(spark, 35, start=5), "image_id",
                   refresh, "k2", 10)
    assert refresh.rows_seen == 35 and {m for _, m in table_rows(ctx)} == {"m3"}


def test_a_unit_committed_twice_is_written_once(spark, tmp_path):
    """The unit's Delta transaction id: a retried commit of the same unit is a no-op."""
    from realsyn.jobs.core.units import TXN_APP_ID, TXN_VERSION
    from realsyn.jobs.core.session import session_conf
    ctx = make_ctx(spark, tmp_path)
    write_in_units(ctx, TABLE, source(spark, 10), "image_id", Computer(), "k1", 10)
    again = Computer()(source(spark, 10, start=100), 10)
    for _ in range(2):
        with session_conf(spark, TXN_APP_ID, "app"), session_conf(spark, TXN_VERSION, "1"):
            ctx.append(TABLE, again)
    assert ctx.read(TABLE).count() == 20


def test_refetch_matches_reasons_exactly_and_by_status_family(spark):
    from realsyn.jobs.core.refetch import reason_matches
    reasons = ["timeout", "http_503", "http_404", "http_5", "decode_error", None]
    df = spark.createDataFrame([(r,) for r in reasons], "fetch_reason string")

    def matched(*wanted):
        return sorted(r["fetch_reason"] for r in df.where(reason_matches(list(wanted))).collect())
    assert matched("timeout") == ["timeout"]
    assert matched("http_5xx") == ["http_503"]
    assert matched("http_4xx", "timeout") == ["http_404", "timeout"]
    assert matched("connection_error") == []
