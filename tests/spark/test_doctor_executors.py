"""`realsyn doctor --spark`: one task per slot reports its host's GPUs, on the shared session."""
from realsyn.jobs.checks.doctor import run_doctor
from tests.conftest import make_config


def test_doctor_with_spark_reports_the_executors_gpus(spark, tmp_path):
    lines: list[str] = []
    assert run_doctor(make_config(tmp_path), spark=True, say=lines.append) == 0
    [executors] = [line for line in lines if "executor gpus:" in line]
    assert executors.startswith("ok    executor gpus: ") and "GPU(s)" in executors
    assert lines[-1].startswith("every required check passes")
