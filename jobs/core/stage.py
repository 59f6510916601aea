"""The stage contract: declared parameters and tables, a ledger that must balance, skip-if-unchanged."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import realsyn
from realsyn.jobs.core.decisive import decisive
from realsyn.jobs.core.errors import UserError
from realsyn.jobs.core.redact import flat_strings
from realsyn.jobs.core.module_graph import source_hash
from realsyn.jobs.core.params import Declared
from realsyn.jobs.core.resources import TaskResources, spark_profile
from realsyn.jobs.core.tables import TableStore
from realsyn.jobs.core.tracking import Tracker
from realsyn.jobs.core.units import work_fingerprint
from realsyn.schemas import spec


class LedgerError(UserError, RuntimeError):
    """Rows in != kept + rejected: a stage lost or invented rows (the ledger is named)."""


class InputError(UserError, RuntimeError):
    """Bad input the user must fix (missing path, wrong format); reported as one line."""


@dataclass
class Ledger:
    """in = kept + rejected (by reason), for one kind of row a stage handles."""

    name: str
    rows_in: int
    kept: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def check(self, stage: str) -> None:
        if self.rows_in != self.kept + self.rejected_total:
            raise LedgerError(
                f"stage {stage}: ledger for {self.name} does not balance: in={self.rows_in} "
                f"kept={self.kept} rejected={self.rejected_total} {self.rejected}")

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {f"{self.name}.in": self.rows_in, f"{self.name}.kept": self.kept,
               f"{self.name}.rejected": self.rejected_total}
        out.update({f"{self.name}.rejected.{r}": n for r, n in self.rejected.items()})
        return out

    def line(self) -> str:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.rejected.items()))
        return f"{self.name}: in={self.rows_in} kept={self.kept} rejected={self.rejected_total}" + (
            f" ({reasons})" if reasons else "")

    def as_dict(self) -> dict:
        return {"in": self.rows_in, "kept": self.kept, "rejected": self.rejected}


def ledger_from_status(name: str, rows_in: int, df: DataFrame) -> Ledger:
    """Count kept / rejected-by-reason from a table with status and reason columns."""
    rows = df.groupBy("status", "reason").count().collect()
    kept = sum(r["count"] for r in rows if r["status"] == "kept")
    rejected: dict[str, int] = {}
    for r in rows:
        if r["status"] != "kept":
            rejected[r["reason"] or "unknown"] = rejected.get(r["reason"] or "unknown", 0) + r["count"]
    return Ledger(name, rows_in, kept, rejected)


class StageParams(Declared):
    """A stage's declared parameters: subclasses are keyword-only frozen dataclasses whose
    fields declare every config key the stage depends on, and nothing else (udfs/declared.py;
    one generic from_config reads them). run() gets this object, never the config, so the
    parameters are the whole of what the config can change."""


def params_dict(params: StageParams) -> dict[str, Any]:
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else {}


def params_hash(params: StageParams) -> str:
    """What of the parameters decides the stage's output (locations left out: decisive)."""
    blob = json.dumps(decisive(params), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def params_flat(params: StageParams) -> dict[str, str]:
    """Dotted field -> string (nested dataclasses flattened), secrets redacted: MLflow params."""
    return flat_strings(params_dict(params))


class UndeclaredTable(RuntimeError):
    """A stage touched a table it does not declare."""


@dataclass(kw_only=True)
class Context:
    """What the runner hands a stage besides its parameters: Spark, tracking, its own
    tables only (the store itself stays private: no stage reaches an undeclared table), and
    its declared task resources resolved against the config (None: none are applied)."""

    spark: SparkSession
    _store: TableStore
    tracker: Tracker
    stage: "Stage"
    run_id: str = ""
    params_hash: str = ""
    stage_order: tuple[str, ...] = ()   # pipeline order, for reports over several stages
    resources: TaskResources | None = None
    full_refresh: bool = False          # recompute unit work (jobs/core/units.py) instead of resuming it
    unit_rows: int = 0                  # most rows per unit of the stage's unit work (0: the stage has none)
    say: Any = print                    # the run's console
    unit_target_s: float = 0.0          # seconds a unit should take (jobs/units.UnitPlan; 0: units of unit_rows)
    unit_first_rows: int = 0            # rows of a run's first unit, which measures the rate
    writes: bool = True                 # False under --plan: the stage may look, never write (caches too)

    @functools.cached_property
    def task_profile(self):
        """The ResourceProfile the stage passes to its heavy mapInPandas / mapInArrow calls
        (`profile=ctx.task_profile`), or None where the session's default task is used:
        local mode, the switch off, or a declaration the default task already meets."""
        return spark_profile(self.spark, self.resources)

    def _declared(self, name: str, outputs_only: bool = False) -> None:
        if name not in self.stage.outputs and (outputs_only or name not in self.stage.inputs):
            verb = "writes" if outputs_only else "reads"
            raise UndeclaredTable(f"stage {self.stage.name} {verb} {name} but does not declare it")

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """A declared input, or one of the stage's own outputs read back after writing it."""
        self._declared(name)
        return self._store.read(name, version)

    def store_has(self, name: str) -> bool:
        self._declared(name)
        return self._store.exists(name)

    def table_version(self, name: str) -> int | None:
        self._declared(name)
        return self._store.version(name)

    def table_property(self, name: str, key: str) -> str | None:
        self._declared(name)
        return self._store.property(name, key)

    def state_uri(self, name: str) -> str:
        """Where the stage keeps a small file of its own between runs (a cache, never a table)."""
        return self._store.state_uri(f"{self.stage.name}/{name}")

    def _run_properties(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"stage": self.stage.name, "config_hash": self.params_hash,
                "pipeline_run": self.run_id, "version": realsyn.__version__, **(extra or {})}

    def write(self, name: str, df: DataFrame, extra_properties: dict[str, str] | None = None,
              **kwargs) -> int | None:
        self._declared(name, outputs_only=True)
        return self._store.write(name, df, self._run_properties(extra_properties), **kwargs)

    def append(self, name: str, df: DataFrame) -> int | None:
        self._declared(name, outputs_only=True)
        return self._store.append(name, df)

    def set_properties(self, name: str, properties: dict[str, str]) -> None:
        """Set realsyn.* table properties (one commit)."""
        self._declared(name, outputs_only=True)
        self._store.set_properties(name, properties)

    def merge_replace(self, name: str, df: DataFrame, **kwargs) -> int | None:
        """Make the table equal `df` by one MERGE (changed rows only; TableStore.merge_replace)."""
        self._declared(name, outputs_only=True)
        return self._store.merge_replace(name, df, self._run_properties(), **kwargs)

    def upsert(self, name: str, df: DataFrame) -> int | None:
        """Insert new keys and update changed rows (one commit; TableStore.upsert)."""
        self._declared(name, outputs_only=True)
        return self._store.upsert(name, df)

    def delete_keys(self, name: str, key, keys: DataFrame) -> None:
        """Delete the rows whose `key` is in `keys` (one commit)."""
        self._declared(name, outputs_only=True)
        self._store.delete_keys(name, key, keys)

    def latest_runs(self) -> list[dict]:
        """The latest recorded run of every other stage (meta.stage_runs rows), in pipeline
        order; only for a stage that declares reads_run_records. Not versioned as an input:
        a stage's latest run changes only together with the outputs it wrote."""
        if not self.stage.reads_run_records:
            raise UndeclaredTable(f"stage {self.stage.name} reads {RUNS_TABLE} but does not declare it")
        latest = [r.asDict() for name, r in last_runs(self._store).items() if name != self.stage.name]
        order = {n: i for i, n in enumerate(self.stage_order)}
        return sorted(latest, key=lambda r: order.get(r["stage"], len(order)))


class Stage:
    """Subclasses declare their parameters (Params), tables, weights and task resources, and
    implement run()."""

    @classmethod
    def main(cls) -> int:
        """spark-submit's entry point (`jobs/<stage>.py [options]`): the CLI's command of this
        stage. The CLI is imported by name, so no stage's code reaches a runner."""
        return importlib.import_module("realsyn.jobs.cli").main([cls.name, *sys.argv[1:]])

    name: str = ""
    description: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    reads_run_records: bool = False      # reads the other stages' latest ledgers (Context.latest_runs)
    Params: type[StageParams] = StageParams
    # What one task of the stage's heavy step needs (jobs/core/resources.py). Not hashed into the
    # fingerprint: resources change how tasks are scheduled, never what they write.
    resources: TaskResources = TaskResources()
    # Rows per unit of the stage's unit work (jobs/core/units.py), or the config key holding it;
    # 0: the stage commits its outputs whole. Not in the fingerprint: units change how
    # work is committed, never what is written.
    unit_rows: int | str = 0
    # The code that computes each row-reusing output (unit tables, stored fits and top-k):
    # table -> modules. Its work fingerprint (jobs/core/units.py) covers these modules and what
    # they import, never the runtime (module_graph.RUNTIME), so an edit elsewhere reuses
    # every row. tests/unit/test_code_fingerprint.py holds every stage to it.
    work_code: dict[str, tuple[str, ...]] = {}

    def work_fingerprint(self, table: str, decides: object) -> str:
        """What decides `table`'s rows: its declared work code and `decides` (settings, weights
        by content, upstream work fingerprints)."""
        return work_fingerprint(self.work_code[table], decides)

    def run(self, ctx: Context, params: Any) -> list[Ledger]:
        raise NotImplementedError

    def external_inputs(self, ctx: Context, params: Any) -> dict:
        """Inputs that are not tables (files), folded into the fingerprint."""
        return {}

    def weights(self, params: Any) -> dict[str, str]:
        """Identity of the model weights the stage loads (role -> content hash or pinned name)."""
        return {}

    def code_hash(self) -> str:
        """The source of this stage's module and of every realsyn module it imports, transitively."""
        return source_hash(type(self).__module__)

    def fingerprint(self, params: Any, input_versions: dict, external: dict, weights: dict) -> str:
        blob = json.dumps({"code": self.code_hash(), "params": decisive(params), "weights": weights,
                           "inputs": input_versions, "external": external},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


RUNS_TABLE = "meta.stage_runs"


def last_runs(tables: TableStore) -> dict[str, Any]:
    """Each stage's last finished run (a meta.stage_runs row), in one query: one row per
    stage reaches the driver. The runner reads it once per pipeline run; every stage
    appears once in a run, so a stage's own record cannot change before it is decided."""
    if not tables.exists(RUNS_TABLE):
        return {}
    runs = tables.read(RUNS_TABLE)
    latest = (runs.groupBy("stage").agg(F.max_by(F.struct(*runs.columns), F.col("finished_at")).alias("r"))
              .select("r.*").collect())
    return {r["stage"]: r for r in latest}


def decide(previous, fingerprint: str, config_hash: str, input_versions: dict, output_versions: dict,
           force: str = "") -> tuple[bool, str]:
    """Whether a stage runs, and why, from its last finished run (a meta.stage_runs row or
    None) and what it would run with now. `force` names the flag that forces a run."""
    if force:
        return True, force
    if previous is None:
        return True, "no finished run yet"
    if previous["fingerprint"] == fingerprint:
        recorded = previous["output_versions"] or {}
        rewritten = [t for t, v in output_versions.items() if v != recorded.get(t)]
        if rewritten:
            return True, f"{', '.join(rewritten)} changed since its last run"
        return False, "inputs, config and code unchanged"
    before = previous["input_versions"] or {}
    reasons = [f"{t} v{before.get(t)} -> v{v}" for t, v in input_versions.items() if before.get(t) != v]
    if previous["config_hash"] != config_hash:
        reasons.append("its parameters changed")
    return True, "; ".join(reasons) or "its code, model weights or input files changed"


def record_run(tables: TableStore, ctx: Context, stage: Stage, fingerprint: str, input_versions: dict,
               ledgers: list[Ledger], seconds: float, mlflow_run_id: str) -> dict[str, int | None]:
    """Append the run to meta.stage_runs; returns the output versions it recorded."""
    output_versions = {t: tables.version(t) for t in stage.outputs}
    row = [(stage.name, fingerprint, ctx.params_hash, input_versions, output_versions,
            json.dumps({l.name: l.as_dict() for l in ledgers}), mlflow_run_id, float(seconds),
            datetime.now(timezone.utc).replace(tzinfo=None))]
    df = ctx.spark.createDataFrame(row, spec(RUNS_TABLE).schema)
    tables.append(RUNS_TABLE, df)
    return output_versions


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0
