"""MLflow tracking: one parent run per pipeline run, one child run per stage."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from realsyn.jobs.config import Config
from realsyn.udfs.object_files import boto_uri
from realsyn.jobs.redact import redact_text, redact_value

log = logging.getLogger("realsyn")
TEXT_ARTIFACTS = (".md", ".txt", ".json", ".yaml", ".yml", ".csv", ".log")


def tracking_location(cfg: Config) -> tuple[str, str]:
    """(tracking URI, artifact root); local default: sqlite store + a folder in the work dir."""
    work = Path(cfg.get("run.work_dir")).expanduser().resolve()
    uri = cfg.get("mlflow.tracking_uri") or f"sqlite:///{work / 'mlflow' / 'mlflow.db'}"
    # MLflow's S3 store (boto3) names Hadoop's s3a:// objects s3://.
    artifacts = boto_uri(cfg.get("mlflow.artifact_root")) or (work / "mlflow" / "artifacts").as_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return uri, artifacts


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
                self.experiment_id = mlflow.set_experiment(name).experiment_id
            self._mlflow = mlflow
        return self._mlflow

    def _experiment(self, mlflow, name: str) -> str:
        exp = mlflow.get_experiment_by_name(name)
        return exp.experiment_id if exp else mlflow.create_experiment(name, artifact_location=self.artifact_root)

    @contextlib.contextmanager
    def run(self, name: str, nested: bool = False, tags: dict | None = None):
        if not self.enabled:
            yield None
            return
        mlflow = self.mlflow
        with mlflow.start_run(run_name=name, experiment_id=self.experiment_id, nested=nested,
                              tags={k: redact_value(k, str(v)) for k, v in (tags or {}).items()}) as active:
            yield active

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
