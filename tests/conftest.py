"""One local SparkSession per test run; helpers to build configs in temp folders."""
from __future__ import annotations

import os

import pytest

SAMPLE_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "sample.yaml")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def make_config(work_dir, *overrides, files=()):
    from realsyn.jobs.config import load_config
    base = [f"run.work_dir={work_dir}", "spark.master=local[2]", "spark.progress_bar=false",
            "spark.conf={spark.sql.shuffle.partitions: '4', spark.ui.enabled: 'false', "
            "spark.databricks.delta.snapshotPartitions: '1', spark.driver.memory: '2g'}"]
    return load_config("local", list(files), base + list(overrides))


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from realsyn.jobs.session import get_spark
    cfg = make_config(tmp_path_factory.mktemp("spark-session"))
    session = get_spark(cfg)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    from realsyn.jobs.sample_corpus import write_sample
    out = tmp_path_factory.mktemp("sample")
    write_sample(str(out), n_docs=120, seed=7)
    return out


@pytest.fixture(scope="session")
def sample_pipeline(spark, sample_dir, tmp_path_factory):
    """The whole pipeline run once on the sample; many test modules inspect its tables."""
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.tables import TableStore
    work = tmp_path_factory.mktemp("pipeline")
    cfg = make_config(work, f"run.input={sample_dir}/obelics/*.parquet", f"fetch.file_root={sample_dir}",
                      files=[SAMPLE_CONF])
    result = run_stages(cfg, say=lambda *_: None)
    return cfg, result, TableStore(spark, cfg)
