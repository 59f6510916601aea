"""The stage contract: declared tables and config, a ledger that must balance, skip-if-unchanged."""
from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import realsyn
from realsyn.jobs.config import Config
from realsyn.jobs.tables import TableStore
from realsyn.jobs.tracking import Tracker
from realsyn.schemas import spec


class LedgerError(RuntimeError):
    pass


class InputError(RuntimeError):
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
        out = {f"{self.name}.in": self.rows_in, f"{self.name}.kept": self.kept,
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


@dataclass
class Context:
    spark: SparkSession
    cfg: Config
    tables: TableStore
    tracker: Tracker
    stage: "Stage"
    run_id: str = ""

    def read(self, name: str) -> DataFrame:
        if name not in self.stage.inputs:
            raise RuntimeError(f"stage {self.stage.name} reads {name} but does not declare it")
        return self.tables.read(name)

    def write(self, name: str, df: DataFrame, **kwargs) -> int:
        if name not in self.stage.outputs:
            raise RuntimeError(f"stage {self.stage.name} writes {name} but does not declare it")
        props = {"stage": self.stage.name, "config_hash": self.stage.config_hash(self.cfg),
                 "pipeline_run": self.run_id, "version": realsyn.__version__}
        return self.tables.write(name, df, props, **kwargs)


class Stage:
    """Subclasses declare their tables and config sections and implement run()."""

    name: str = ""
    description: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    config_sections: tuple[str, ...] = ()

    def run(self, ctx: Context) -> list[Ledger]:
        raise NotImplementedError

    def external_inputs(self, ctx: Context) -> dict:
        """Inputs that are not tables (files), folded into the fingerprint."""
        return {}

    def config_hash(self, cfg: Config) -> str:
        return cfg.hash(list(self.config_sections))

    def code_hash(self) -> str:
        source = inspect.getsource(inspect.getmodule(self))
        return hashlib.sha256((realsyn.__version__ + source).encode()).hexdigest()[:16]

    def fingerprint(self, ctx: Context, input_versions: dict) -> str:
        blob = json.dumps({"code": self.code_hash(), "config": self.config_hash(ctx.cfg),
                           "inputs": input_versions, "external": self.external_inputs(ctx)},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


RUNS_TABLE = "meta.stage_runs"


def last_run(tables: TableStore, stage: str):
    if not tables.exists(RUNS_TABLE):
        return None
    return (tables.read(RUNS_TABLE).where(F.col("stage") == stage)
            .orderBy(F.col("finished_at").desc()).limit(1).first())


def is_up_to_date(tables: TableStore, stage: Stage, fingerprint: str) -> bool:
    """Same fingerprint as the last finished run, and nobody rewrote its outputs since."""
    previous = last_run(tables, stage.name)
    if previous is None or previous["fingerprint"] != fingerprint:
        return False
    recorded = previous["output_versions"] or {}
    return all(tables.version(t) == recorded.get(t) for t in stage.outputs)


def record_run(ctx: Context, stage: Stage, fingerprint: str, input_versions: dict,
               ledgers: list[Ledger], seconds: float, mlflow_run_id: str) -> None:
    output_versions = {t: ctx.tables.version(t) for t in stage.outputs}
    row = [(stage.name, fingerprint, stage.config_hash(ctx.cfg), input_versions, output_versions,
            json.dumps({l.name: l.as_dict() for l in ledgers}), mlflow_run_id, float(seconds),
            datetime.now(timezone.utc).replace(tzinfo=None))]
    df = ctx.spark.createDataFrame(row, spec(RUNS_TABLE).schema)
    ctx.tables.append(RUNS_TABLE, df)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0
