"""What a run would do, without doing it (`--plan`): per stage, run or skip, and why.

It takes the runner's own decision (jobs/pipeline.run_decision) from the same fingerprint,
so a stage the plan skips is a stage the run skips. Within one plan a stage after one that
runs is planned to run too: it does unless that stage commits no new version of its input.
Nothing is written: no table, no run record, no MLflow run; only the tables' logs and the
input listing are read.
"""
from __future__ import annotations

from dataclasses import dataclass

from realsyn.jobs.config import Config
from realsyn.jobs.pipeline import all_stages, force_flag, run_decision, select_stages, stage_context
from realsyn.jobs.session import get_spark
from realsyn.jobs.stage import last_runs
from realsyn.jobs.tables import TableStore

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
