"""`--plan` takes the runner's decision without running: what it plans is what a run then
does, and planning writes nothing (no table version, no MLflow run)."""
from realsyn.jobs.pipeline import BLOCKED, RUN, SKIP, plan_stages
from tests.conftest import SAMPLE_CONF, make_config


def table_versions(store) -> dict:
    from realsyn.schemas.registry import REGISTRY
    return {t: store.version(t) for t in REGISTRY}


def mlflow_runs(cfg) -> int:
    import mlflow
    from realsyn.jobs.core.tracking import Tracker
    client = mlflow.MlflowClient(Tracker(cfg).uri)
    return sum(len(client.search_runs([e.experiment_id], max_results=10_000)) for e in client.search_experiments())


def test_plan_is_what_the_run_then_does_and_writes_nothing(spark, sample_pipeline):
    from realsyn.jobs.pipeline import run_stages
    cfg, _, store = sample_pipeline
    versions, runs = table_versions(store), mlflow_runs(cfg)
    planned = plan_stages(cfg)
    assert table_versions(store) == versions and mlflow_runs(cfg) == runs
    said: list[str] = []
    result = run_stages(cfg, say=said.append)     # other tests may have forced stages: the plan knows
    ran = {o.name: not o.skipped for o in result.outcomes}
    for p in planned:
        if p.action == SKIP:
            assert not ran[p.stage] and f"[{p.stage}] skipped: {p.reason} (use --force to redo)" in said
        elif not p.reason.startswith("after "):   # its own reason: it runs
            assert ran[p.stage], p
        # "after X": it runs unless X leaves its input as it was (no new version)
    first = next((p for p in planned if p.action == RUN), None)
    if first is not None:
        assert f"[{first.stage}] started: {first.reason}" in said
    again = plan_stages(cfg)
    assert [(p.stage, p.action, p.reason) for p in again] == [
        (p.stage, SKIP, "inputs, config and code unchanged") for p in planned]


def test_a_changed_parameter_plans_its_stage_and_those_after_it(spark, sample_pipeline):
    from realsyn.jobs.pipeline import run_stages
    cfg, _, store = sample_pipeline
    run_stages(cfg, say=lambda *_: None)           # current, whatever ran before
    changed = make_config(cfg.get("run.work_dir"), f"run.input={cfg.get('run.input')}",
                          f"fetch.file_root={cfg.get('fetch.file_root')}", "retrieval.top_k=2", files=[SAMPLE_CONF])
    plan = {p.stage: p for p in plan_stages(changed)}
    assert plan["cluster"].action == SKIP
    assert (plan["retrieve"].action, plan["retrieve"].reason) == (RUN, "its parameters changed")
    assert plan["generate"].action == RUN and plan["generate"].reason.startswith("after retrieve")
    assert all(plan[s].action == RUN for s in ("balance", "export"))
    forced = plan_stages(cfg, ["ingest", "embed"], force=True)
    assert [(p.stage, p.action, p.reason) for p in forced] == [("ingest", RUN, "--force"), ("embed", RUN, "--force")]


def test_a_stage_whose_inputs_are_missing_cannot_run_yet(spark, tmp_path):
    plan = plan_stages(make_config(tmp_path, "mlflow.enabled=false"), ["extract_images", "embed"])
    assert plan[0].action == BLOCKED and plan[0].reason == "needs bronze.documents (written by ingest)"
    assert plan[1].action == BLOCKED and "silver.images (written by extract_images)" in plan[1].reason

