"""The commands a user types, run as subprocesses."""
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
BASE = ["--set", "spark.master=local[2]", "--set", "spark.progress_bar=false"]


def realsyn(*args, cwd=None, timeout=2400):
    """The CLI as a user runs it; the generous timeout is for whole pipeline runs on busy machines."""
    return subprocess.run([sys.executable, "-m", "realsyn", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=timeout)


def test_help_lists_commands():
    out = realsyn("--help")
    assert out.returncode == 0 and "run" in out.stdout and "ingest" in out.stdout


def test_malformed_config_is_one_clear_line(tmp_path):
    out = realsyn("--set", "retrieval.topk=3", "run")
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("realsyn: error:") and "retrieval.top_k" in last
    assert "Traceback" not in out.stderr


def test_missing_input_is_one_clear_line(tmp_path):
    out = realsyn(*BASE, "--work-dir", str(tmp_path), "--input", str(tmp_path / "none.parquet"), "ingest")
    assert out.returncode == 2, out.stderr
    assert "no input files match" in out.stderr and "Traceback" not in out.stderr


def test_stage_runs_under_spark_submit(tmp_path, sample_dir):
    venv_bin = os.path.dirname(sys.executable)
    env = {**ENV, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    flags = realsyn("submit-args", "--set", "spark.progress_bar=false").stdout.split()
    assert "--jars" in flags or "--packages" in flags
    out = subprocess.run([os.path.join(venv_bin, "spark-submit"), "--master", "local[2]", *flags,
                          "jobs/ingest.py", "--work-dir", str(tmp_path), "--input", f"{sample_dir}/obelics",
                          "--set", "spark.progress_bar=false"],
                         capture_output=True, text=True, env=env, timeout=600,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[ingest] documents:" in out.stdout and "bronze.documents" in out.stdout


def test_the_console_shows_our_lines_and_the_log_file_the_rest(tmp_path, sample_dir):
    out = realsyn("--set", "spark.master=local[2]", "--work-dir", str(tmp_path), "--input", f"{sample_dir}/obelics",
                  "ingest", "--set", "spark.conf={spark.ui.enabled: 'false'}")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    ours = ("realsyn: ", "[ingest] ", "tables:", "  ", "stages run:", "MLflow:", "took ", "")
    assert all(line.startswith(ours) for line in lines), [l for l in lines if not l.startswith(ours)]
    assert any(l.startswith("[ingest] started") for l in lines)
    assert any(l.startswith("[ingest] documents: in=") for l in lines)
    assert out.stderr == "", out.stderr[-2000:]
    logs = list((tmp_path / "logs").glob("realsyn-*.log"))
    assert len(logs) == 1 and str(logs[0]) in out.stdout
    assert "log4j" in logs[0].read_text()           # the JVM's own lines went to the file
