"""SparkSession factory: one place that knows the profiles, Delta and the worker Python."""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

from realsyn.jobs.config import Config

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def delta_jars(cfg: Config) -> list[str]:
    """Pre-fetched io.delta jars matching the configured package version, if present."""
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
    jars = delta_jars(cfg)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    else:
        conf["spark.jars.packages"] = cfg.get("jvm.delta_package")
    conf.setdefault("spark.ui.showConsoleProgress", str(cfg.get("spark.progress_bar")).lower())
    conf.setdefault("spark.sql.session.timeZone", "UTC")
    return conf


class SparkSetupError(RuntimeError):
    pass


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
    if cfg.profile != "databricks" and not _has_delta(spark):
        raise SparkSetupError(
            "Delta Lake classes are not on the driver's classpath; pass them to spark-submit, e.g. "
            "spark-submit $(realsyn submit-args) jobs/<stage>.py")
    return spark


def _has_delta(spark) -> bool:
    from py4j.java_gateway import JavaClass
    return isinstance(spark._jvm.io.delta.tables.DeltaTable, JavaClass)
