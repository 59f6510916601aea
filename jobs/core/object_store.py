"""Object storage (S3 and S3-compatible servers): one credentials story for every reader.

Spark reaches s3a:// (and s3:// off EMR) through Hadoop's S3A connector; the in-place
Parquet readers, the export writers and MLflow's artifact store reach the same objects
through pyarrow and boto3. All of them take credentials from the AWS SDK's default chain
(the standard environment variables, then the shared profile, then the instance role)
and the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, or `storage.s3.endpoint`.
Nothing secret is ever put in a config, a Spark setting or a run record: only the
endpoint and the region travel to the executors (docs/deploy.md).
"""
from __future__ import annotations

import glob
import os

from realsyn.jobs.core.config import Config
from realsyn.udfs.object_files import is_s3

# The chain boto3 and pyarrow's AWS SDK use too, so Hadoop sees the same credentials.
DEFAULT_CHAIN = "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_VARS = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Where a configured location can be an object store URI.
LOCATION_KEYS = ("tables.warehouse", "run.input", "export.dir", "mlflow.artifact_root")


def uses_s3(cfg: Config) -> bool:
    return any(is_s3(str(cfg.get(k) or "")) for k in LOCATION_KEYS)


def endpoint(cfg: Config | None = None) -> str:
    configured = cfg.get("storage.s3.endpoint") if cfg is not None else ""
    return configured or next((os.environ[v] for v in ENDPOINT_VARS if os.environ.get(v)), "")


def region(cfg: Config | None = None) -> str:
    configured = cfg.get("storage.s3.region") if cfg is not None else ""
    return configured or next((os.environ[v] for v in REGION_VARS if os.environ.get(v)), "")


def connector_wanted(cfg: Config) -> bool:
    """Whether this session adds Hadoop's S3A connector (managed platforms bring their own)."""
    setting = cfg.get("storage.s3.connector")
    if setting != "auto":
        return setting == "always"
    return uses_s3(cfg) and cfg.profile not in ("databricks", "emr")


def connector_jars(cfg: Config) -> tuple[list[str], list[str]]:
    """(jar files found in the jars folder, packages Spark must resolve itself) for the
    pinned S3A connector (`jvm.s3a_packages`; `make s3-jars` fetches them)."""
    jars_dir = os.path.expanduser(os.environ.get("REALSYN_JARS_DIR") or cfg.get("jvm.jars_dir"))
    found, missing = [], []
    for coordinate in cfg.get("jvm.s3a_packages"):
        _, artifact, version = coordinate.split(":")
        hits = glob.glob(os.path.join(jars_dir, f"{artifact}-{version}.jar"))
        (found.append(hits[0]) if hits else missing.append(coordinate))
    return (found, []) if not missing else ([], list(cfg.get("jvm.s3a_packages")))


def hadoop_settings(cfg: Config) -> dict[str, str]:
    """Hadoop's S3A settings (without the spark.hadoop. prefix): the SDK's default chain, the
    endpoint and region from the one place, path-style requests for a custom endpoint, and
    s3:// served by S3A too (EMR's own s3:// is EMRFS; elsewhere Hadoop knows no s3://)."""
    conf = {"fs.s3a.aws.credentials.provider": DEFAULT_CHAIN,
            "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    url, addressing = endpoint(cfg), cfg.get("storage.s3.addressing")
    if url:
        conf["fs.s3a.endpoint"] = url
    if addressing != "auto" or url:
        conf["fs.s3a.path.style.access"] = str(addressing != "virtual").lower()
    conf["fs.s3a.endpoint.region"] = region(cfg) or "us-east-1"
    return conf


def executor_env(cfg: Config) -> dict[str, str]:
    """What pyarrow and boto3 in the Python workers need besides credentials (which each
    node takes from its own chain): the endpoint and the region."""
    env = {}
    if endpoint(cfg):
        env["AWS_ENDPOINT_URL_S3"] = endpoint(cfg)
    if region(cfg):
        env["AWS_REGION"] = region(cfg)
    return env
