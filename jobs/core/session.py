"""SparkSession factory: one place that knows the profiles, Delta and the worker Python."""
from __future__ import annotations

import glob
import os
import sys
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

from realsyn.conf import CONF_DIR
from realsyn.jobs.core import object_store
from realsyn.jobs.core.config import Config
from realsyn.jobs.core.errors import UserError

# A relative jvm.assembly_jar is taken from the checkout root (where build.sbt is).
PROJECT_ROOT = CONF_DIR.parent
# build.sbt writes the versions it was built for into the assembly's manifest.
ASSEMBLY_DELTA_ATTR = "Realsyn-Delta-Version"

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class SparkSetupError(UserError, RuntimeError):
    """Spark or Delta cannot start as configured (the jar, setting or command is named)."""


def jar_manifest(path: str | Path) -> dict[str, str]:
    """Main attributes of a jar's META-INF/MANIFEST.MF (continuation lines joined)."""
    try:
        with zipfile.ZipFile(path) as jar:
            text = jar.read("META-INF/MANIFEST.MF").decode("utf-8")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise SparkSetupError(f"jvm.assembly_jar {path} is not a readable jar with a manifest: {exc}") from exc
    attrs: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            break  # the main section ends at the first blank line
        if line.startswith(" ") and key:
            attrs[key] += line[1:]
        elif ":" in line:
            key, value = line.split(":", 1)
            attrs[key] = value.strip()
    return attrs


def assembly_jar(cfg: Config) -> str | None:
    """`make assembly`'s jar (Delta and what Spark lacks), if built for the configured Delta."""
    configured = cfg.get("jvm.assembly_jar")
    if not configured:
        return None
    path = Path(os.path.expanduser(configured))
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    if not path.is_file():
        return None
    version = cfg.get("jvm.delta_package").rsplit(":", 1)[-1]
    built_for = jar_manifest(path).get(ASSEMBLY_DELTA_ATTR)
    if built_for != version:
        # A jar left from other pins would put two Deltas in one JVM; the other sources
        # are keyed by version, so fall back to them.
        warnings.warn(f"{path} was built for Delta {built_for}, not {version}; ignored (run `make assembly`)",
                      stacklevel=2)
        return None
    return str(path)


def delta_jars(cfg: Config) -> list[str]:
    """The Delta jars for Spark: the assembly if built, else pre-fetched io.delta jars
    matching the configured package version, else none (Spark resolves the package)."""
    assembly = assembly_jar(cfg)
    if assembly:
        return [assembly]
    jars_dir = os.environ.get("REALSYN_JARS_DIR") or cfg.get("jvm.jars_dir")
    version = cfg.get("jvm.delta_package").rsplit(":", 1)[-1]
    found = sorted(glob.glob(os.path.join(os.path.expanduser(jars_dir), f"delta-*-{version}.jar")))
    has_core = any(Path(j).name.startswith("delta-spark_") for j in found)
    return found if has_core else []


def spark_conf(cfg: Config) -> dict[str, str]:
    """Everything the builder sets, as strings (also validated by tests per profile)."""
    conf = {k: str(v) for k, v in cfg.get("spark.conf").items()}
    if cfg.profile == "databricks":
        return conf  # Delta and the session are the cluster's own.
    conf.update(DELTA_CONF)
    jars, packages = delta_jars(cfg), []
    if not jars:
        packages.append(cfg.get("jvm.delta_package"))
    if object_store.connector_wanted(cfg):
        s3_jars, s3_packages = object_store.connector_jars(cfg)
        jars, packages = jars + s3_jars, packages + s3_packages
        for key, value in object_store.hadoop_settings(cfg).items():
            conf.setdefault(f"spark.hadoop.{key}", value)
    if object_store.uses_s3(cfg) or object_store.connector_wanted(cfg):
        for key, value in object_store.executor_env(cfg).items():
            conf.setdefault(f"spark.executorEnv.{key}", value)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if packages:
        conf["spark.jars.packages"] = ",".join(packages)
    conf.setdefault("spark.ui.showConsoleProgress", str(cfg.get("spark.progress_bar")).lower())
    conf.setdefault("spark.sql.session.timeZone", "UTC")
    return conf


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands Python its gateway port."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def submit_args(cfg: Config) -> list[str]:
    """Flags that give a spark-submit run the Delta jars and settings."""
    conf = spark_conf(cfg)
    args = []
    if "spark.jars" in conf:
        args += ["--jars", conf.pop("spark.jars")]
    if "spark.jars.packages" in conf:
        args += ["--packages", conf.pop("spark.jars.packages")]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return args


def get_spark(cfg: Config):
    """Build (or reuse) the session for the config's profile."""
    # Workers must run the same interpreter (the venv), or they lack our packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        use_object_store(active, cfg)
        return active
    builder = SparkSession.builder.appName(cfg.get("spark.app_name"))
    master = cfg.get("spark.master")
    submitted = launched_by_spark_submit()
    if master and not submitted:  # spark-submit's --master wins
        builder = builder.master(master)
    for key, value in spark_conf(cfg).items():
        if submitted and key in ("spark.jars", "spark.jars.packages"):
            continue  # too late for the driver's classpath; see submit_args()
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.get("spark.log_level"))
    use_object_store(spark, cfg)
    if cfg.profile != "databricks" and not _has_delta(spark):
        raise SparkSetupError(
            "Delta Lake classes are not on the driver's classpath; pass them to spark-submit, e.g. "
            "spark-submit $(realsyn submit-args) jobs/<stage>.py")
    return spark


def use_object_store(spark, cfg: Config) -> None:
    """An object store's endpoint and region for this config, also on a session that was
    built before it (Hadoop reads its settings when a filesystem is first opened; Python
    workers get the environment of the UDFs created after this)."""
    if not (object_store.uses_s3(cfg) and object_store.connector_wanted(cfg)):
        return
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in object_store.hadoop_settings(cfg).items():
        hadoop.set(key, value)
    spark.sparkContext.environment.update(object_store.executor_env(cfg))
    os.environ.update(object_store.executor_env(cfg))   # the driver's own pyarrow and boto3


def _has_delta(spark) -> bool:
    from py4j.java_gateway import JavaClass
    return isinstance(spark._jvm.io.delta.tables.DeltaTable, JavaClass)


@contextmanager
def session_conf(spark, key: str, value: str):
    """`key` set to `value` in the session's conf while the block runs, then restored."""
    old = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if old is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, old)
