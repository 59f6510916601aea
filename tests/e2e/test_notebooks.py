"""The Databricks source-format notebooks also run locally as plain scripts."""
import os
import runpy

import pytest

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "notebooks")


def test_notebooks_are_databricks_source_format():
    for name in ("quickstart.py", "explore.py"):
        with open(os.path.join(NOTEBOOKS, name)) as fh:
            text = fh.read()
        assert text.startswith("# Databricks notebook source\n") and "# COMMAND ----------" in text


def test_explore_notebook_on_a_finished_run(sample_pipeline, monkeypatch, capsys):
    cfg, _, _ = sample_pipeline
    work = cfg.get("run.work_dir")
    monkeypatch.setenv("REALSYN_WORK", work)
    runpy.run_path(os.path.join(NOTEBOOKS, "explore.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ingest" in out and "clusters:" in out and "#1" in out
    for png in ("cluster_sizes.png", "sample_grid.png"):
        with open(os.path.join(work, "notebook", png), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow   # the whole pipeline again (80 s); `make run` and the explore notebook run it by default
def test_quickstart_notebook_runs_the_pipeline(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REALSYN_WORK", str(tmp_path / "nb"))
    monkeypatch.setenv("REALSYN_SAMPLE_DOCS", "20")
    runpy.run_path(os.path.join(NOTEBOOKS, "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "gold.realsyn" in out and "stages run:" in out
