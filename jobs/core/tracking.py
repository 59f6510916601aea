"""MLflow tracking: one parent run per pipeline run, one child run per stage."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from realsyn.jobs.core.config import Config
from realsyn.udfs.object_files import boto_uri
from realsyn.jobs.core.redact import redact_text, redact_value

log = logging.getLogger("realsyn")
TEXT_ARTIFACTS = (".md", ".txt", ".json", ".yaml", ".yml", ".csv", ".log")
# MLflow 3's UI opens an experiment in the view this tag names (its GenAI view otherwise
# guesses, or asks); our runs train and evaluate models and build their data.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def tracking_location(cfg: Config, make_folder: bool = True) -> tuple[str, str]:
    """(tracking URI, artifact root); local default: sqlite store + a folder in the work dir.
    `make_folder` creates the sqlite store's folder (a check that must write nothing says no)."""
    work = Path(cfg.get("run.work_dir")).expanduser().resolve()
    uri = cfg.get("mlflow.tracking_uri") or f"sqlite:///{work / 'mlflow' / 'mlflow.db'}"
    # MLflow's S3 store (boto3) names Hadoop's s3a:// objects s3://.
    artifacts = boto_uri(cfg.get("mlflow.artifact_root")) or (work / "mlflow" / "artifacts").as_uri()
    if make_folder and uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return uri, artifacts


@dataclass(frozen=True)
class Lineage:
    """One dataset a run read or wrote, shown in MLflow's Dataset column: a Delta table at the
    version the runner recorded, or a folder (a world, an export, weights)."""

    name: str                    # a table's registry name (bronze.documents), or a folder's
    context: str                 # input / output (stages); training / evaluation / input / output (models)
    path: str = ""               # the folder or URI; a path-mode table's location
    table: str = ""              # a metastore table's name (tables.mode: catalog)
    version: int | None = None   # the Delta version read or written
    delta: bool = True           # False: a folder, no version


def folder_lineage(path: str, context: str, name: str = "") -> Lineage:
    local = "://" not in path
    where = os.path.abspath(os.path.expanduser(path)) if local else path
    return Lineage(name or os.path.basename(where.rstrip("/")) or where, context, path=where, delta=False)


@functools.cache
def _table_source_class():
    """Built on first use: mlflow is imported only where tracking is on."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    class TableSource(DeltaDatasetSource):
        """A Delta table by metadata only. DeltaDatasetSource resolves a table name through
        the active Spark session, looks a Unity Catalog table up over REST when it is
        logged, and drops version 0 (falsy); this one records what the runner knows."""

        def __init__(self, path: str, table: str, version: int | None):
            super().__init__(path=path or "-")
            self._path, self._delta_table_name, self._delta_table_version = path or None, table or None, version

        def to_dict(self) -> dict:
            info: dict = {"path": self._path} if self._path else {}
            if self._delta_table_name:
                info["delta_table_name"] = self._delta_table_name
            if self._delta_table_version is not None:
                info["delta_table_version"] = self._delta_table_version
            return info

    return TableSource


def _folder_source(path: str):
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.exceptions import MlflowException
    with warnings.catch_warnings():   # two sources claim local paths (file and ""): the same class
        warnings.simplefilter("ignore")
        try:
            return resolve_dataset_source(boto_uri(path))   # MLflow names Hadoop's s3a:// objects s3://
        except MlflowException:
            # A scheme no MLflow source knows (dbfs:/ off Databricks): the URI is kept as given.
            return type(resolve_dataset_source("/"))(path)


def mlflow_dataset(item: Lineage):
    """An MLflow dataset of metadata only (no data read, no Spark job). Its digest starts with
    the Delta version (v3-...), which the runs table shows beside the name; the rest hashes
    the location, since MLflow keeps one dataset per (name, digest) in an experiment."""
    from mlflow.data.meta_dataset import MetaDataset
    path = redact_text(item.path)
    where = hashlib.sha256(json.dumps([item.name, path, item.table]).encode()).hexdigest()[:8]
    if not item.delta:
        return MetaDataset(_folder_source(path), name=item.name, digest=where)
    version = "" if item.version is None else str(item.version)
    return MetaDataset(_table_source_class()(path, item.table, item.version), name=item.name, digest=f"v{version}-{where}")


@contextlib.contextmanager
def store_lock(path: str):
    """An exclusive advisory lock on a file (POSIX), held for the block."""
    import fcntl
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Tracker:
    """Thin wrapper so stages log the same way, and a run without MLflow still works."""

    def __init__(self, cfg: Config):
        self.experiment_name = cfg.get("mlflow.experiment")   # no whole config: stages see the tracker
        self.enabled = cfg.get("mlflow.enabled")
        self.uri, self.artifact_root = tracking_location(cfg)
        self._mlflow = None
        self.experiment_id = None

    @property
    def mlflow(self):
        if self._mlflow is None:
            # MLflow's own alembic/sqlalchemy chatter is not useful to our users.
            os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
            import mlflow
            for name in ("alembic", "mlflow"):
                logging.getLogger(name).setLevel(logging.WARNING)
            mlflow.set_tracking_uri(self.uri)
            name = self.experiment_name
            if self.uri.startswith("sqlite:///"):
                # Two runs on one work dir would race MLflow's schema migration and the
                # experiment's creation; one lock file makes the first-time setup serial.
                with store_lock(self.uri[len("sqlite:///"):] + ".lock"):
                    self.experiment_id = self._experiment(mlflow, name)
            elif self.uri != "databricks":
                self.experiment_id = self._experiment(mlflow, name)
            else:
                exp = mlflow.set_experiment(name)
                self._tag_kind(mlflow, exp)
                self.experiment_id = exp.experiment_id
            self._mlflow = mlflow
        return self._mlflow

    def _experiment(self, mlflow, name: str) -> str:
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            return mlflow.create_experiment(name, artifact_location=self.artifact_root,
                                            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        self._tag_kind(mlflow, exp)
        return exp.experiment_id

    @staticmethod
    def _tag_kind(mlflow, exp) -> None:
        """An experiment made before the tag (or by hand) gets it; a kind someone chose stays."""
        if EXPERIMENT_KIND_TAG not in (exp.tags or {}):
            mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)

    @contextlib.contextmanager
    def run(self, name: str, nested: bool = False, tags: dict | None = None):
        if not self.enabled:
            yield None
            return
        mlflow = self.mlflow
        with mlflow.start_run(run_name=name, experiment_id=self.experiment_id, nested=nested,
                              tags={k: redact_value(k, str(v)) for k, v in (tags or {}).items()}) as active:
            yield active

    def lineage(self, items: list[Lineage]) -> None:
        """The run's datasets, one batch. MLflow's run outputs take logged models only
        (log_outputs), so written tables are logged as inputs too, with context "output"."""
        if self.enabled and items:
            self.mlflow.log_inputs(datasets=[mlflow_dataset(i) for i in items], contexts=[i.context for i in items],
                                   tags_list=[None] * len(items))

    def params(self, values: dict[str, str]) -> None:
        if self.enabled:
            # MLflow caps a param value at 6000 characters.
            self.mlflow.log_params({k: str(redact_value(k, str(v)))[:6000] for k, v in values.items()})

    def metrics(self, values: dict[str, float]) -> None:
        if self.enabled:
            self.mlflow.log_metrics({k: float(v) for k, v in values.items()})

    def text(self, text: str, path: str) -> None:
        if self.enabled:
            self.mlflow.log_text(redact_text(text), path)

    def artifact(self, local_path: str, folder: str | None = None) -> None:
        if not (self.enabled and os.path.exists(local_path)):
            return
        if local_path.endswith(TEXT_ARTIFACTS):   # text goes through the redactor like every record
            name = os.path.basename(local_path)
            with open(local_path, encoding="utf-8", errors="replace") as fh:
                self.text(fh.read(), f"{folder}/{name}" if folder else name)
        else:
            self.mlflow.log_artifact(local_path, folder)

    def dict(self, data: dict, path: str) -> None:
        if self.enabled:
            self.mlflow.log_text(redact_text(json.dumps(data, indent=2, sort_keys=True, default=str)), path)
