"""Lineage a user sees in MLflow: each stage's run names the Delta tables it read and wrote,
at the versions the runner recorded in meta.stage_runs, in an experiment tagged for the
model-training view. Two cheap stages through the real runner on three documents."""
import json

import pyarrow as pa
import pyarrow.parquet as pq

from realsyn.jobs.pipeline import run_stages
from realsyn.jobs.core.stage import last_runs
from realsyn.jobs.core.tables import TableStore
from realsyn.jobs.core.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from tests.conftest import make_config

SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                    ("metadata", pa.string()), ("general_metadata", pa.string())])


def stage_runs(client, experiment_id: str, pipeline_run: str) -> dict:
    """stage name -> its MLflow child run in one pipeline run."""
    parent = client.search_runs([experiment_id], f"tags.`realsyn.run` = '{pipeline_run}'")[0]
    children = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {r.info.run_name: r for r in children}


def logged(run) -> dict[tuple[str, str], dict]:
    """(table, context) -> the dataset's source, as the runs table's Dataset column holds it."""
    out = {}
    for item in run.inputs.dataset_inputs:
        context = {t.key: t.value for t in item.tags}["mlflow.data.context"]
        assert item.dataset.source_type == "delta_table"
        source = json.loads(item.dataset.source)
        assert item.dataset.digest.startswith(f"v{source['delta_table_version']}-")
        out[(item.dataset.name, context)] = source
    return out


def test_stage_runs_log_their_tables_at_the_recorded_versions(spark, tmp_path):
    import mlflow
    rows = [{"images": [None], "texts": [t], "metadata": "[null]", "general_metadata": json.dumps({"url": f"u{i}"})}
            for i, t in enumerate(["A red boat sails on the calm lake today.", "Two dogs run in the green park.",
                                   "The old bridge crosses the wide river here."])]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp_path / "in" / "docs.parquet")
    cfg = make_config(tmp_path / "work", f"run.input={tmp_path}/in", "sentences.perplexity_filter=false")
    result = run_stages(cfg, ["ingest", "extract_sentences"], say=lambda *_: None)
    store = TableStore(spark, cfg)
    recorded = last_runs(store)

    client = mlflow.MlflowClient(result.tracking_uri)
    exp = client.get_experiment_by_name(cfg.get("mlflow.experiment"))
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    runs = stage_runs(client, exp.experiment_id, result.run_id)
    for stage in ("ingest", "extract_sentences"):
        want = {(t, "input"): v for t, v in recorded[stage]["input_versions"].items()}
        want.update({(t, "output"): v for t, v in recorded[stage]["output_versions"].items()})
        got = logged(runs[stage])
        assert {k: s["delta_table_version"] for k, s in got.items()} == want
        for (table, _), source in got.items():
            assert source["path"] == store.path(table)
    # What the user reads: ingest wrote bronze.documents, extract_sentences read that version.
    ingest, sentences = logged(runs["ingest"]), logged(runs["extract_sentences"])
    written = ingest[("bronze.documents", "output")]["delta_table_version"]
    assert sentences[("bronze.documents", "input")]["delta_table_version"] == written == \
        result.tables["bronze.documents"][0]
    assert set(sentences) == {("bronze.documents", "input"), ("silver.document_sentences", "output"),
                              ("silver.sentences", "output")}

    # A skipped stage read and wrote nothing: its run names no table.
    lines: list[str] = []
    again = run_stages(cfg, ["ingest", "extract_sentences"], say=lines.append)
    assert all(o.skipped for o in again.outcomes), "\n".join(lines)
    skipped = stage_runs(client, exp.experiment_id, again.run_id)
    assert {name: len(r.inputs.dataset_inputs) for name, r in skipped.items()} == {"ingest": 0,
                                                                                   "extract_sentences": 0}
