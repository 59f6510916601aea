"""The training loop, the teacher's cache and the zero-shot scores, on a tiny world."""
import numpy as np
import pytest

from realsyn.jobs.training.clip_training import TrainSpec, learning_rate
from realsyn.jobs.training.zero_shot import part_accuracies, scores


def test_learning_rate_warms_up_then_decays_to_zero():
    spec = TrainSpec(steps=100, lr=1.0, warmup_steps=10)
    lrs = [learning_rate(spec, s) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.01


def test_scores_count_hits_both_ways():
    classes = np.eye(3, dtype=np.float32)
    images = np.array([[1, 0, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1]], dtype=np.float32)
    got = scores(images, np.array([0, 1, 2, 2]), classes)
    assert got["zero_shot_acc"] == pytest.approx(0.75)
    assert got["zero_shot_mean_class_acc"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert got["t2i_recall_at_1"] == pytest.approx(1.0)


def test_part_accuracies_say_which_half_of_a_class_name_was_right():
    classes = ["blue_circle", "blue_star", "red_circle", "red_star"]
    labels = np.array([0, 1, 2, 3])
    predicted = np.array([0, 1, 0, 2])   # right; right; wrong colour, right shape; right colour, wrong shape
    assert part_accuracies(predicted, labels, classes) == {"part_1_acc": 0.75, "part_2_acc": 0.75}
    assert part_accuracies(predicted, labels, ["a", "b_c", "d_e", "f_g"]) == {}   # not one structure
    assert part_accuracies(predicted, labels, ["a", "b", "c", "d"]) == {}


def test_teacher_trains_saves_loads_through_weights_dir_and_is_cached(tmp_path):
    from realsyn.jobs.training.teacher import WEIGHTS_FILE, train_teacher
    from realsyn.jobs.world.corpus import write_world
    from realsyn.udfs.clip_encoder import Encoder, EncoderSpec
    world = write_world(str(tmp_path / "world"), n_docs=20, n_images=30, n_eval_per_class=1, n_teacher=96)["out"]
    spec = TrainSpec(steps=12, batch_size=32, warmup_steps=2)
    lines = []
    report = train_teacher(world, str(tmp_path / "weights"), spec, threads=1, log=lines.append)
    assert report["pairs"] == 96 and report["last_loss"] < report["first_loss"]
    assert 0.0 <= report["trained"]["zero_shot_acc"] <= 1.0
    loaded = Encoder(EncoderSpec(arch="tiny", pretrained="", weights=str(tmp_path / "weights" / "clip"), seed=0, threads=1, mixed_precision=False))
    fresh = Encoder(EncoderSpec(arch="tiny", pretrained="", weights="", seed=0, threads=1, mixed_precision=False))
    assert loaded.model_id.startswith("tiny@weights:")
    text = ["two red circles sit on the left."]
    assert not np.allclose(loaded.encode_texts(text), fresh.encode_texts(text))
    mtime = (tmp_path / "weights" / WEIGHTS_FILE).stat().st_mtime_ns
    again = train_teacher(world, str(tmp_path / "weights"), spec, threads=1, log=lines.append)
    assert again == report and (tmp_path / "weights" / WEIGHTS_FILE).stat().st_mtime_ns == mtime
    assert "unchanged inputs" in lines[-1]


def test_train_and_evaluate_commands_save_score_and_log_to_mlflow(tmp_path, capsys):
    import json

    import mlflow
    import pyarrow.parquet as pq

    from realsyn.jobs.cli import main
    from realsyn.jobs.world.corpus import write_world
    from tests.unit.test_world_quality import write_shard
    world = write_world(str(tmp_path / "world"), n_docs=10, n_images=12, n_eval_per_class=1, n_teacher=40)["out"]
    pairs = pq.read_table(f"{world}/teacher/pairs.parquet").to_pylist()
    (tmp_path / "export" / "webdataset").mkdir(parents=True)
    write_shard(tmp_path / "export" / "webdataset" / "00000.tar",
                [(f"{i:04x}", p["text"], {"syn_text": "", "min_cap": i % 3 - 1}) for i, p in enumerate(pairs)],
                images=[f"{world}/teacher/{p['image_path']}" for p in pairs])
    work = tmp_path / "work"
    sets = ["--work-dir", str(work), "--set", "student.steps=4", "--set", "student.batch_size=8",
            "--set", "student.threads=1"]
    assert main([*sets, "train", "--export", str(tmp_path / "export"), "--eval", f"{world}/eval",
                 "--texts", "text1,syn_text", "--cap", "1"]) == 0
    assert "student: " in capsys.readouterr().out
    report = json.loads((work / "student" / "student.json").read_text())
    assert report["pairs"] == sum(1 for i in range(len(pairs)) if 0 <= i % 3 - 1 <= 1)
    assert report["eval"]["classes"] == 60 and (work / "student" / "loss.png").exists()
    assert main([*sets, "evaluate", "--weights", str(work / "student" / "clip"), "--eval", f"{world}/eval"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["zero_shot_acc"] == pytest.approx(report["eval"]["zero_shot_acc"])
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["realsyn"])
    assert sorted(runs["tags.mlflow.runName"]) == ["evaluate", "train"]
    assert "metrics.zero_shot_acc" in runs.columns and "params.sources" in runs.columns
