"""Work committed in units: a stage's expensive step (fetch, embed, generate) writes its
output table in deterministic slices, each its own idempotent Delta commit.

The output table is the record of finished work. A run computes only the input keys the
table does not hold yet under the same work fingerprint (the code and parameters that decide a
row), so a killed run resumes where it stopped, new input is the only work, and a change
of code or parameters recomputes everything. Each unit's commit carries a Delta
transaction id (app id + unit number): a unit committed twice, e.g. when its commit's
answer was lost, is written once. Each commit also carries the unit's number in its
userMetadata, so DESCRIBE HISTORY lists the finished units. Rows whose key left the
input are deleted at the end, so the table always matches the current input.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.core.decisive import decisive
from realsyn.jobs.core.module_graph import module_file, work_code_hash
from realsyn.jobs.core.session import session_conf

WORK_FINGERPRINT_PROPERTY = "work_fingerprint"
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
UNIT_COL = "_realsyn_unit"


def work_fingerprint(code_modules: tuple[str, ...], decides: object) -> str:
    """What decides an output row: the behaviour of the modules that compute it (with their
    imports, never the runtime: module_graph.RUNTIME) and the parameters and weights (by
    content) they use; locations are left out (jobs/core/decisive.py)."""
    missing = [m for m in code_modules if module_file(m) is None]
    if missing:   # hashing nothing would reuse rows whatever the code does
        raise ValueError(f"work code {missing} names no realsyn module")
    blob = json.dumps({"code": [work_code_hash(m) for m in code_modules], "decides": decisive(decides)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def unit_count(pending_rows: int, unit_rows: int) -> int:
    """Units of at most unit_rows rows (none when nothing is pending)."""
    if pending_rows <= 0:
        return 0
    return max(1, math.ceil(pending_rows / max(1, unit_rows)))


def bucket_of(keys: tuple[str, ...], buckets: int):
    """The bucket of each row: a hash of its key (units are runs of buckets)."""
    return F.pmod(F.xxhash64(*[F.col(k) for k in keys]), F.lit(buckets)).cast("int")


MAX_BUCKETS = 1 << 16   # the finest cut of the pending rows: a unit is a run of these buckets


@dataclass(frozen=True)
class UnitPlan:
    """How a run's pending rows are cut into units, each one Delta commit.

    The rows are hashed into buckets and a unit takes the next run of buckets. With a
    target (`units.target_seconds`), the first unit holds `first_rows` (a few rows per task
    slot: it measures the step's rate), and each next one the rows the last rate says fit
    in the target, at most `growth` times the last unit and `max_rows`: a kill then loses
    about one target's worth of the step, whatever the rows cost. Without a target every
    unit holds max_rows (`units.<step>_rows`)."""

    pending: int
    max_rows: int
    first_rows: int = 0
    target_s: float = 0.0
    growth: float = 4.0

    @property
    def adaptive(self) -> bool:
        return self.target_s > 0 and self.first_rows > 0

    @property
    def buckets(self) -> int:
        return max(1, min(self.pending, MAX_BUCKETS))

    def first(self) -> int:
        return max(1, min(self.first_rows, self.max_rows) if self.adaptive else self.max_rows)

    def next_rows(self, rows: float, seconds: float) -> int:
        """Rows for the next unit after one of `rows` took `seconds`."""
        if not self.adaptive:
            return self.max_rows
        fits = rows / max(seconds, 1e-3) * self.target_s
        return int(min(self.max_rows, max(self.first_rows, min(self.growth * rows, fits))))

    def width(self, rows: float) -> int:
        """Buckets holding about `rows` rows."""
        return max(1, round(rows * self.buckets / max(1, self.pending)))


def without(rows: DataFrame, others: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Rows of `rows` whose key is not in `others` (null-safe: a null key part matches a null)."""
    a, b = rows.alias("a"), others.select(*keys).alias("b")
    cond = None
    for k in keys:
        eq = F.col(f"a.`{k}`").eqNullSafe(F.col(f"b.`{k}`"))
        cond = eq if cond is None else cond & eq
    return a.join(b, cond, "left_anti")


@dataclass
class UnitReport:
    table: str
    rows_in: int        # input keys
    reused: int         # already in the table under the same work fingerprint
    computed: int       # input keys computed by this run
    units: int          # units committed by this run
    removed: int        # rows deleted because their key left the input

    def line(self) -> str:
        return (f"{self.table}: {self.rows_in} keys, {self.reused} already done, {self.computed} computed "
                f"in {self.units} unit(s)" + (f", {self.removed} stale row(s) removed" if self.removed else ""))

    def metrics(self) -> dict[str, float]:
        return {f"{self.table}.{k}": float(getattr(self, k)) for k in ("reused", "computed", "units", "removed")}


def write_in_units(ctx, table: str, source: DataFrame, key: str | tuple[str, ...],
                   compute: Callable[[DataFrame, int], DataFrame], fingerprint: str, unit_rows: int,
                   first_rows: int = 0) -> UnitReport:
    """Write compute(slice, rows_in_slice) for every slice of `source` (one row per key)
    that `table` does not hold yet under `fingerprint`, one Delta commit per unit. The
    output of compute must hold one row per input key (failures as rejected rows). The key
    may be several columns: the table key plus what a row was computed from (generate's
    image and R1), so a row whose inputs changed is stale and computed again."""
    spark = ctx.spark
    keys = (key,) if isinstance(key, str) else tuple(key)
    reuse = ctx.store_has(table) and not ctx.full_refresh and ctx.table_property(table, WORK_FINGERPRINT_PROPERTY) == fingerprint
    source = source.persist(StorageLevel.MEMORY_AND_DISK)
    n_in = source.count()
    start = ctx.table_version(table)
    # Pinned to the version before this run's units: the pending set never shrinks under
    # a recomputation while units commit.
    pending = without(source, ctx.read(table, start), keys) if reuse else source
    n_pending = pending.count() if reuse else n_in
    # first_rows: a step's own floor for the first unit (the fetch fills its request window).
    plan = UnitPlan(n_pending, max(1, unit_rows), max(ctx.unit_first_rows, first_rows), ctx.unit_target_s)
    pending = (pending.withColumn(UNIT_COL, bucket_of(keys, plan.buckets)).sortWithinPartitions(UNIT_COL)
               .persist(StorageLevel.MEMORY_AND_DISK))   # filled by the first unit's job
    if ctx.store_has(table) and not reuse and not ctx.full_refresh:
        ctx.say(f"[{ctx.stage.name}] {table}: what decides its rows changed (code or settings in its work "
                f"fingerprint): all {n_in} rows are computed again")
    removed = 0
    if reuse:   # rows whose key left the input (or whose inputs changed) go before new ones come
        stale = without(ctx.read(table, start), source, keys).select(*keys).localCheckpoint()
        removed = stale.count()
        if removed:
            ctx.delete_keys(table, keys, stale)
    app_id = f"realsyn/{ctx.stage.name}/{table}/{fingerprint}/{-1 if start is None else start}/{ctx.run_id}"
    props = {WORK_FINGERPRINT_PROPERTY: fingerprint}
    if not reuse and n_pending == 0:   # empty input: an empty table under this work fingerprint
        ctx.write(table, compute(pending.drop(UNIT_COL), 0), extra_properties=props)
    unit, lo, rows, done = 0, 0, plan.first(), 0.0
    while n_pending and lo < plan.buckets:
        hi = min(plan.buckets, lo + plan.width(rows))
        expected = n_pending * (hi - lo) / plan.buckets
        t0 = time.perf_counter()
        part = compute(pending.where((F.col(UNIT_COL) >= lo) & (F.col(UNIT_COL) < hi)).drop(UNIT_COL),
                       math.ceil(expected))
        meta = json.dumps({"stage": ctx.stage.name, "unit": unit, "buckets": [lo, hi, plan.buckets],
                           WORK_FINGERPRINT_PROPERTY: fingerprint})
        with ExitStack() as txn:
            for conf, value in ((TXN_APP_ID, app_id), (TXN_VERSION, str(unit)), (USER_METADATA, meta)):
                txn.enter_context(session_conf(spark, conf, value))
            if unit == 0 and not reuse:
                ctx.write(table, part, extra_properties=props)   # replaces rows of another work fingerprint
            else:
                ctx.append(table, part)
        seconds = time.perf_counter() - t0
        done += expected
        ctx.say(f"[{ctx.stage.name}] {table}: unit {unit + 1} committed, about {done / n_pending:.0%} of "
                f"{n_pending} rows ({seconds:.1f}s)")
        unit, lo, rows = unit + 1, hi, plan.next_rows(expected, seconds)
    units = unit
    for df in (pending, source):
        df.unpersist()
    report = UnitReport(table, n_in, n_in - n_pending, n_pending, units, removed)
    ctx.tracker.metrics(report.metrics())
    ctx.say(f"[{ctx.stage.name}] {report.line()}")
    return report
