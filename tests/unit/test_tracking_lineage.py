"""Lineage in MLflow without Spark: the datasets a run logs, read back from a real sqlite
store, the experiment's kind tag, and the teach / train / evaluate runs."""
import json

import pytest

from realsyn.jobs.core.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, Lineage, Tracker, folder_lineage, mlflow_dataset
from tests.conftest import make_config


def datasets(run) -> dict[tuple[str, str], tuple[dict, str, str]]:
    """(name, context) -> (source, source type, digest) of a run's logged datasets."""
    out = {}
    for item in run.inputs.dataset_inputs:
        context = {t.key: t.value for t in item.tags}["mlflow.data.context"]
        out[(item.dataset.name, context)] = (json.loads(item.dataset.source), item.dataset.source_type,
                                             item.dataset.digest)
    return out


def test_a_table_dataset_keeps_version_zero_and_shows_the_version_in_its_digest():
    ds = mlflow_dataset(Lineage("bronze.documents", "output", path="/w/bronze/documents", version=0))
    assert ds.name == "bronze.documents" and ds.source._get_source_type() == "delta_table"
    assert ds.source.to_dict() == {"path": "/w/bronze/documents", "delta_table_version": 0}
    assert ds.digest.startswith("v0-")
    # Same name and version elsewhere is another dataset: MLflow keeps one per (name, digest).
    other = mlflow_dataset(Lineage("bronze.documents", "output", path="/v/bronze/documents", version=0))
    assert other.digest != ds.digest


def test_a_catalog_table_is_named_not_looked_up():
    ds = mlflow_dataset(Lineage("gold.realsyn", "input", table="main.gold.realsyn", version=7))
    assert ds.source.to_dict() == {"delta_table_name": "main.gold.realsyn", "delta_table_version": 7}
    assert ds.digest.startswith("v7-")


def test_a_folder_is_a_path_source_and_credentials_in_a_uri_are_masked(tmp_path):
    ds = mlflow_dataset(folder_lineage(str(tmp_path / "eval"), "evaluation"))
    assert ds.name == "eval" and ds.source._get_source_type() == "local"
    assert ds.source.to_dict() == {"uri": str(tmp_path / "eval")}
    remote = mlflow_dataset(folder_lineage("s3a://AKIAEXAMPLE:hunter2@bucket/export/webdataset", "training"))
    assert remote.source._get_source_type() == "s3" and "hunter2" not in remote.source.to_json()
    assert remote.source.to_dict()["uri"].startswith("s3://") and remote.name == "webdataset"


def test_the_experiment_is_created_tagged_and_an_untagged_one_gets_the_tag(tmp_path):
    import mlflow
    cfg = make_config(tmp_path)
    tracker = Tracker(cfg)
    with tracker.run("one"):
        pass
    client = mlflow.MlflowClient(tracker.uri)
    assert client.get_experiment(tracker.experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # An experiment made before the tag existed (or by hand) is tagged when a run opens it.
    old = client.create_experiment("older", artifact_location=tracker.artifact_root)
    later = Tracker(make_config(tmp_path, "mlflow.experiment=older"))
    with later.run("two"):
        pass
    assert later.experiment_id == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # A kind someone chose stays.
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    Tracker(make_config(tmp_path, "mlflow.experiment=chosen")).mlflow
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_lineage_is_logged_in_one_batch_and_off_when_tracking_is_off(tmp_path):
    import mlflow
    tracker = Tracker(make_config(tmp_path))
    with tracker.run("stage") as active:
        tracker.lineage([Lineage("bronze.documents", "input", path="/w/bronze/documents", version=3),
                         Lineage("silver.sentences", "output", path="/w/silver/sentences", version=0)])
    run = mlflow.MlflowClient(tracker.uri).get_run(active.info.run_id)
    got = datasets(run)
    assert got[("bronze.documents", "input")][0]["delta_table_version"] == 3
    assert got[("silver.sentences", "output")][0] == {"path": "/w/silver/sentences", "delta_table_version": 0}
    off = Tracker(make_config(tmp_path / "off", "mlflow.enabled=false"))
    with off.run("stage"):
        off.lineage([Lineage("bronze.documents", "input", version=1)])
    assert off._mlflow is None   # nothing imported, nothing logged


def test_teach_train_and_evaluate_are_runs_in_the_experiment_with_their_folders(tmp_path, capsys):
    import mlflow
    import pyarrow.parquet as pq

    from realsyn.jobs.cli import main
    from realsyn.jobs.world.corpus import write_world
    from tests.unit.test_world_quality import write_shard
    world = write_world(str(tmp_path / "world"), n_docs=10, n_images=12, n_eval_per_class=1, n_teacher=40)["out"]
    pairs = pq.read_table(f"{world}/teacher/pairs.parquet").to_pylist()
    (tmp_path / "export" / "webdataset").mkdir(parents=True)
    write_shard(tmp_path / "export" / "webdataset" / "00000.tar",
                [(f"{i:04x}", p["text"], {"syn_text": "", "min_cap": 1}) for i, p in enumerate(pairs)],
                images=[f"{world}/teacher/{p['image_path']}" for p in pairs])
    work = tmp_path / "work"
    sets = ["--work-dir", str(work), "--set", "student.steps=2", "--set", "student.batch_size=8",
            "--set", "student.threads=1", "--set", "teacher.steps=2", "--set", "teacher.batch_size=8",
            "--set", "teacher.threads=1", "--set", "teacher.generators=false"]
    assert main([*sets, "teach", "--world", world]) == 0
    assert main([*sets, "train", "--export", str(tmp_path / "export"), "--eval", f"{world}/eval"]) == 0
    assert main([*sets, "evaluate", "--weights", str(work / "student" / "clip"), "--eval", f"{world}/eval"]) == 0
    capsys.readouterr()
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("realsyn")
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"teach", "train", "evaluate"}
    teach = datasets(runs["teach"])
    assert teach[("pairs.parquet", "training")][:2] == ({"uri": f"{world}/teacher/pairs.parquet"}, "local")
    assert teach[("eval", "evaluation")][0] == {"uri": f"{world}/eval"}
    assert teach[("weights", "output")][0] == {"uri": str(work / "weights")}
    assert runs["teach"].data.metrics["teacher.zero_shot_acc"] == pytest.approx(
        json.loads((work / "weights" / "teacher.json").read_text())["trained"]["zero_shot_acc"])
    train = datasets(runs["train"])
    assert train[("webdataset", "training")][0] == {"uri": str(tmp_path / "export" / "webdataset")}
    assert train[("eval", "evaluation")][0] == {"uri": f"{world}/eval"}
    assert train[("student", "output")][0] == {"uri": str(work / "student")}
    assert set(datasets(runs["evaluate"])) == {("clip", "input"), ("eval", "evaluation")}
