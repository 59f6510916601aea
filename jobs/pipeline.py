"""Runs stages in order under one MLflow parent run; skips a stage whose fingerprint (parameters,
code, weights, inputs) matches its last run. `plan_stages` says what a run would do without
doing it (`--plan`)."""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from realsyn.jobs.core.config import Config
from realsyn.jobs.core.console import StageProgress
from realsyn.jobs.core.redact import redact_text
from realsyn.jobs.core.resources import stage_resources
from realsyn.jobs.core.session import get_spark
from realsyn.jobs.core.stage import Context, Ledger, Stage, decide, last_runs, params_flat, params_hash, record_run
from realsyn.jobs.core.tables import TableStore
from realsyn.jobs.core.tracking import Lineage, Tracker

log = logging.getLogger("realsyn")


def all_stages() -> list[Stage]:
    """Pipeline order. Imported lazily so `realsyn --help` stays fast."""
    from realsyn.jobs.extract_images import ExtractImages
    from realsyn.jobs.extract_sentences import ExtractSentences
    from realsyn.jobs.balance import Balance
    from realsyn.jobs.cluster import Cluster
    from realsyn.jobs.embed import Embed
    from realsyn.jobs.export import Export
    from realsyn.jobs.generate import Generate
    from realsyn.jobs.ingest import Ingest
    from realsyn.jobs.retrieve import Retrieve
    from realsyn.jobs.semantic_dedup import SemanticDedup
    from realsyn.jobs.semantic_neighbours import SemanticNeighbours
    return [Ingest(), ExtractImages(), ExtractSentences(), Embed(), SemanticNeighbours(), SemanticDedup(),
            Cluster(), Retrieve(), Generate(), Balance(), Export()]


def stage_names() -> list[str]:
    return [s.name for s in all_stages()]


def select_stages(names: list[str] | None) -> list[Stage]:
    stages = all_stages()
    if not names:
        return stages
    known = {s.name: s for s in stages}
    unknown = [n for n in names if n not in known]
    if unknown:
        from realsyn.jobs.core.config import ConfigError
        raise ConfigError(f"--stages: unknown stage(s) {unknown}; stages are {', '.join(known)}")
    return [s for s in stages if s.name in names]


@dataclass
class StageOutcome:
    name: str
    skipped: bool
    seconds: float
    ledgers: list[Ledger] = field(default_factory=list)


@dataclass
class PipelineResult:
    run_id: str
    outcomes: list[StageOutcome]
    seconds: float
    tables: dict[str, tuple[int | None, int]]   # name -> (version, rows)
    tracking_uri: str


def run_stages(cfg: Config, names: list[str] | None = None, force: bool = False,
               say=print, console=None, full_refresh: bool = False, before=None) -> PipelineResult:
    """Run the stages in order. `console` (jobs/console.Console) adds a progress line.
    `full_refresh` recomputes the stages' unit work instead of resuming it (implies force).
    `before(tables, say)` runs on the session first (e.g. refetch forgetting failed fetches)."""
    force = force or full_refresh
    started = time.perf_counter()
    stages = select_stages(names)
    spark = get_spark(cfg)
    tables = TableStore(spark, cfg)
    tracker = Tracker(cfg)
    run_id = uuid.uuid4().hex[:12]
    outcomes: list[StageOutcome] = []
    say(redact_text(f"realsyn: profile={cfg.profile} work_dir={cfg.get('run.work_dir')} "
                    f"stages={','.join(s.name for s in stages)}"))
    if before is not None:
        before(tables, say)
    with tracker.run("pipeline", tags={"realsyn.run": run_id, "profile": cfg.profile}):
        tracker.params(cfg.flat())
        tracker.text(yaml.safe_dump(cfg.redacted(), sort_keys=False), "config/resolved.yaml")
        previous = last_runs(tables)
        for stage in stages:
            outcomes.append(_run_one(stage, cfg, spark, tables, tracker, run_id, force, say, console,
                                     full_refresh, previous.get(stage.name)))
    written = {}
    for stage in stages:
        for t in stage.outputs:
            if tables.exists(t):
                written[t] = (tables.version(t), tables.read(t).count())
    return PipelineResult(run_id, outcomes, time.perf_counter() - started, written, tracker.uri)


def force_flag(force: bool, full_refresh: bool) -> str:
    """The flag that forces a stage to run, as the user gave it ("" when none)."""
    return "--full-refresh" if full_refresh else "--force" if force else ""


def stage_context(stage: Stage, cfg, spark, tables, tracker, run_id: str = "", full_refresh: bool = False,
                  say=print) -> tuple[Any, Context]:
    """The stage's parameters from the config and the context the runner hands it."""
    params = stage.Params.from_config(cfg)
    unit_rows = cfg.get(stage.unit_rows) if isinstance(stage.unit_rows, str) else stage.unit_rows
    target_s, first_rows = 0.0, 0
    if unit_rows:   # units sized by time (jobs/units.UnitPlan): a few rows per task slot first
        target_s = float(cfg.get("units.target_seconds"))
        first_rows = int(cfg.get("units.first_rows_per_task")) * spark.sparkContext.defaultParallelism
    ctx = Context(spark=spark, _store=tables, tracker=tracker, stage=stage, run_id=run_id, params_hash=params_hash(params), stage_order=tuple(stage_names()),
                  resources=stage_resources(stage.resources, cfg), full_refresh=full_refresh, unit_rows=int(unit_rows), say=say,
                  unit_target_s=target_s, unit_first_rows=first_rows)
    return params, ctx


def run_decision(stage: Stage, params, ctx: Context, tables, input_versions: dict, force: str,
                 previous) -> tuple[str, bool, str]:
    """(fingerprint, runs, why): the stage's fingerprint now and whether that means running
    it, against `previous`, its last finished run (last_runs)."""
    fingerprint = stage.fingerprint(params, input_versions, stage.external_inputs(ctx, params), stage.weights(params))
    outputs = {t: tables.version(t) for t in stage.outputs}
    runs, why = decide(previous, fingerprint, ctx.params_hash, input_versions, outputs, force)
    return fingerprint, runs, why


def table_lineage(tables: TableStore, versions: dict[str, int | None], context: str) -> list[Lineage]:
    """Tables at the versions the runner decided on and recorded in meta.stage_runs (no other
    lookup): by location, or by metastore name in catalog mode, where the path is not known."""
    catalog = tables.mode == "catalog"
    return [Lineage(name, context, path="" if catalog else tables.path(name),
                    table=tables.identifier(name) if catalog else "", version=version)
            for name, version in versions.items()]


def _run_one(stage: Stage, cfg, spark, tables, tracker, run_id, force, say, console=None,
             full_refresh: bool = False, previous=None) -> StageOutcome:
    params, ctx = stage_context(stage, cfg, spark, tables, tracker, run_id, full_refresh, say)
    input_versions = {t: tables.version(t) for t in stage.inputs}
    missing = [t for t, v in input_versions.items() if v is None]
    if missing:
        from realsyn.jobs.core.tables import MissingTable
        raise MissingTable(f"stage {stage.name} needs {', '.join(missing)}; run the earlier stages first")
    fingerprint, runs, why = run_decision(stage, params, ctx, tables, input_versions, force_flag(force, full_refresh),
                                          previous)
    if not runs:
        with tracker.run(stage.name, nested=True, tags={"skipped": "true"}):
            tracker.metrics({"skipped": 1})
        say(f"[{stage.name}] skipped: {why} (use --force to redo)")
        return StageOutcome(stage.name, True, 0.0)
    say(f"[{stage.name}] started: {why}")
    t0 = time.perf_counter()
    with tracker.run(stage.name, nested=True, tags={"skipped": "false"}) as active:
        tracker.params(params_flat(params))
        spark.sparkContext.setJobGroup(stage.name, f"realsyn stage {stage.name}")
        with StageProgress(spark, stage.name, console) if console else contextlib.nullcontext():
            ledgers = stage.run(ctx, params)
        seconds = time.perf_counter() - t0
        for ledger in ledgers:
            ledger.check(stage.name)
        metrics = {"seconds": seconds}
        for ledger in ledgers:
            metrics.update(ledger.metrics())
            metrics[f"{ledger.name}.rows_per_s"] = ledger.rows_in / seconds if seconds else 0.0
        tracker.metrics(metrics)
        tracker.dict({l.name: l.as_dict() for l in ledgers}, "ledger.json")
        output_versions = record_run(tables, ctx, stage, fingerprint, input_versions, ledgers, seconds,
                                     active.info.run_id if active else "")
        tracker.lineage(table_lineage(tables, input_versions, "input")
                        + table_lineage(tables, output_versions, "output"))
    say(f"[{stage.name}] " + "; ".join(ledger.line() for ledger in ledgers) + f" ({seconds:.1f}s)")
    return StageOutcome(stage.name, False, seconds, ledgers)


def summary(result: PipelineResult) -> str:
    lines = ["", "tables:"]
    for name, (version, rows) in result.tables.items():
        lines.append(f"  {name:<28} {rows:>9} rows  (Delta version {version})")
    ran = [o.name for o in result.outcomes if not o.skipped]
    skipped = [o.name for o in result.outcomes if o.skipped]
    lines.append(f"stages run: {', '.join(ran) or '-'}; skipped: {', '.join(skipped) or '-'}")
    lines.append(redact_text(f"MLflow: {result.tracking_uri} (run tag realsyn.run={result.run_id})"))
    lines.append(f"took {result.seconds:.1f}s")
    return "\n".join(lines)


# What a run would do, without doing it (`--plan`): per stage, run or skip, and why. It
# takes the runner's own decision (run_decision) from the same fingerprint,
# so a stage the plan skips is a stage the run skips. Within one plan a stage after one that
# runs is planned to run too: it does unless that stage commits no new version of its input.
# Nothing is written: no table, no run record, no MLflow run; only the tables' logs and the
# input listing are read.
RUN, SKIP, BLOCKED = "would run", "would skip", "cannot run yet"


@dataclass(frozen=True)
class StagePlan:
    stage: str
    action: str     # RUN, SKIP or BLOCKED
    reason: str

    def line(self) -> str:
        return f"[{self.stage}] {self.action}: {self.reason}"


def writers() -> dict[str, str]:
    """table -> the stage that writes it."""
    return {t: s.name for s in all_stages() for t in s.outputs}


def plan_stages(cfg: Config, names: list[str] | None = None, force: bool = False,
                full_refresh: bool = False) -> list[StagePlan]:
    spark = get_spark(cfg)
    tables = TableStore(spark, cfg)
    written_by = writers()
    rewritten: dict[str, str] = {}      # table -> the planned stage that writes it again
    previous = last_runs(tables)
    plans = []
    for stage in select_stages(names):
        params, ctx = stage_context(stage, cfg, spark, tables, None, full_refresh=full_refresh)
        ctx.writes = False   # a plan writes nothing, not even a stage's cache
        input_versions = {t: tables.version(t) for t in stage.inputs}
        missing = [t for t, v in input_versions.items() if v is None and t not in rewritten]
        upstream = sorted({rewritten[t] for t in stage.inputs if t in rewritten})
        if missing:
            needs = ", ".join(f"{t} (written by {written_by.get(t, '?')})" for t in missing)
            plans.append(StagePlan(stage.name, BLOCKED, f"needs {needs}"))
            continue
        if upstream and not (force or full_refresh):
            runs, why = True, f"after {', '.join(upstream)} (unless that leaves its input as it was)"
        else:
            _, runs, why = run_decision(stage, params, ctx, tables, input_versions, force_flag(force, full_refresh),
                                        previous.get(stage.name))
        plans.append(StagePlan(stage.name, RUN if runs else SKIP, why))
        if runs:
            rewritten.update({t: stage.name for t in stage.outputs})
    return plans
