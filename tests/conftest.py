"""One local SparkSession per test run; helpers to build configs in temp folders."""
from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import pytest

SAMPLE_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "sample.yaml")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# The tests' Spark settings; CLI runs that must match an in-session run pass them as --set.
TEST_SETS = ["spark.master=local[2]", "spark.progress_bar=false",
             "spark.conf={spark.sql.shuffle.partitions: '4', spark.ui.enabled: 'false', "
             "spark.databricks.delta.snapshotPartitions: '1', spark.driver.memory: '2g'}"]


def make_config(work_dir, *overrides, files=()):
    from realsyn.jobs.core.config import load_config
    return load_config("local", list(files), [f"run.work_dir={work_dir}", *TEST_SETS, *overrides])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 API on 127.0.0.1 (moto's server), named in the standard AWS variables for
    the whole run: set before the shared session starts, so its Python workers see them."""
    from tests.s3_server import S3Server
    server = S3Server(str(tmp_path_factory.mktemp("s3") / "moto.log")).start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def spark(tmp_path_factory, s3_server):
    from realsyn.jobs.core.session import get_spark
    # With Hadoop's S3A connector, so object-store tests can share the session.
    cfg = make_config(tmp_path_factory.mktemp("spark-session"), "storage.s3.connector=always")
    session = get_spark(cfg)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    from realsyn.jobs.corpora.sample_corpus import write_sample
    out = tmp_path_factory.mktemp("sample")
    write_sample(str(out), n_docs=120, seed=7)
    return out


@pytest.fixture(scope="session")
def config_reads():
    """stage name -> the config keys it read while sample_pipeline ran it (filled there)."""
    return {}


@pytest.fixture(scope="session")
def table_reads():
    """stage name -> the tables its run() read from the store during sample_pipeline."""
    return {}


def leaf_keys(node, prefix=()):
    """Paths (tuples) of the leaves of a config mapping; an empty mapping is a leaf."""
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaf_keys(v, (*prefix, str(k)))
    else:
        yield prefix


@contextmanager
def recording_reads(reads: dict, tables: dict):
    """Attribute every Config read to the stage the pipeline is running at the time, and
    every table read from the store to the stage whose run() is on."""
    from realsyn.jobs import pipeline
    from realsyn.jobs.core.config import Config
    from realsyn.jobs.core.tables import TableStore
    current, running = [None], [None]
    store_read = TableStore.read
    missing = object()
    get, section, run_one = Config.get, Config.section, pipeline._run_one

    def note(cfg, path):
        node, prefix = (get(cfg, path), tuple(path.split("."))) if path else (cfg.data, ())
        for leaf in leaf_keys(node, prefix):
            reads.setdefault(current[0], set()).add(".".join(leaf))

    def recorded_get(self, dotted, default=...):
        value = get(self, dotted, default)
        if get(self, dotted, missing) is not missing:     # a key that exists (a default is no read)
            note(self, dotted)
        return value

    def recorded_section(self, name):
        note(self, name)
        return section(self, name)

    def recorded_whole(method):
        def whole(self, *args, **kwargs):
            note(self, "")
            return method(self, *args, **kwargs)
        return whole

    def recorded_read(self, name, *args, **kwargs):
        if running[0]:
            tables.setdefault(running[0], set()).add(name)
        return store_read(self, name, *args, **kwargs)

    def running_stage(cls):
        run = cls.run

        def wrapped(self, *args, **kwargs):
            running[0] = self.name
            try:
                return run(self, *args, **kwargs)
            finally:
                running[0] = None
        return mock.patch.object(cls, "run", wrapped)

    def attributed(stage, *args, **kwargs):
        current[0] = stage.name
        try:
            return run_one(stage, *args, **kwargs)
        finally:
            current[0] = None

    with mock.patch.object(Config, "get", recorded_get), mock.patch.object(Config, "section", recorded_section), \
            mock.patch.object(Config, "flat", recorded_whole(Config.flat)), \
            mock.patch.object(Config, "hash", recorded_whole(Config.hash)), \
            mock.patch.object(pipeline, "_run_one", attributed), \
            mock.patch.object(TableStore, "read", recorded_read), ExitStack() as stack:
        for stage in pipeline.all_stages():
            stack.enter_context(running_stage(type(stage)))
        yield reads


@pytest.fixture(scope="session")
def sample_snapshot(tmp_path_factory):
    """Where sample_pipeline leaves a copy of its work dir as the run ended it."""
    return tmp_path_factory.mktemp("pipeline-finished") / "work"


@pytest.fixture(scope="session")
def sample_pipeline(spark, sample_dir, tmp_path_factory, config_reads, table_reads, sample_snapshot):
    """The whole pipeline run once on the sample; many test modules inspect its tables.
    Which config keys and tables each stage reads is recorded on the way (config_reads,
    table_reads)."""
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.tables import TableStore
    work = tmp_path_factory.mktemp("pipeline")
    cfg = make_config(work, f"run.input={sample_dir}/obelics/*.parquet", f"fetch.file_root={sample_dir}",
                      files=[SAMPLE_CONF])
    with recording_reads(config_reads, table_reads):
        result = run_stages(cfg, say=lambda *_: None)
    # As it stood when the run ended, whatever later tests do to it (sample_lakehouse).
    shutil.copytree(work, sample_snapshot)
    return cfg, result, TableStore(spark, cfg)


def copy_lakehouse(src, dest) -> None:
    """A finished work dir copied elsewhere, as a user moving it would. Tables and export
    move as they are; MLflow's store names its artifact folder by absolute path, so the
    copy's store is pointed at the copy's folder."""
    shutil.copytree(src, dest)
    new = (Path(dest) / "mlflow" / "artifacts").as_uri()
    with sqlite3.connect(Path(dest) / "mlflow" / "mlflow.db") as db:
        (old,), = db.execute("SELECT artifact_location FROM experiments "
                             "WHERE artifact_location LIKE '%/mlflow/artifacts'").fetchall()
        db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (old, new))
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))


@pytest.fixture(scope="session")
def sample_lakehouse(sample_pipeline, sample_dir, sample_snapshot):
    """copy(dest): a private copy of sample_pipeline's work dir as its run left it, for tests
    that change a finished lakehouse (a rerun of the copy skips every stage). Returns the
    sample folder too."""
    def copy(dest):
        copy_lakehouse(sample_snapshot, dest)
        return dest
    return sample_dir, copy
