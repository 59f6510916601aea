"""What one task of a stage needs (declared on the stage), and how a run maps it onto Spark.

A stage declares `resources = TaskResources(cpus=..., gpus=...)`: the cores (threads) and
the share of one GPU that one task of its heavy step (the model, or the per-row Python
work in mapInPandas / mapInArrow) needs. A value may name the config key that holds it,
so the model stages take their GPU share from `resources.*` and their threads from
`models.torch_threads`, never from the profile's name.

The run resolves the declaration against the config (`resolve`), and `task_requests`
decides from the Spark master and the session's Spark conf what to ask Spark for:
stage-level scheduling (a ResourceProfile on the stage's mapInPandas / mapInArrow) exists
for standalone, YARN and Kubernetes masters, not in local mode, where Spark refuses a
TaskResourceProfile when the job runs. A GPU share is asked for only where the executors
have GPUs; nothing is asked for where the session's default task already fits.

Resources change how tasks are scheduled, never what they write, so they are not stage
parameters and not part of any fingerprint (tests/spark/test_fingerprint.py checks that
no `resources.*` key changes one).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("realsyn")

# Cluster managers whose scheduler takes a ResourceProfile without dynamic allocation
# (a TaskResourceProfile on the default executors: standalone since Spark 3.4, YARN, and
# Kubernetes since 3.5) or with it. local / local[n] do not.
STAGE_LEVEL_MASTERS = ("spark://", "yarn", "k8s://", "local-cluster")


@dataclass(frozen=True)
class TaskResources:
    """Cores and share of one GPU that one task needs; either may be a config key."""

    cpus: int | str = 1
    gpus: float | str = 0.0

    def resolve(self, cfg: Any) -> "TaskResources":
        """Numbers for both fields, config keys read from `cfg`."""
        cpus = cfg.get(self.cpus) if isinstance(self.cpus, str) else self.cpus
        gpus = cfg.get(self.gpus) if isinstance(self.gpus, str) else self.gpus
        return TaskResources(int(cpus), float(gpus))


def stage_resources(declared: TaskResources, cfg: Any) -> TaskResources | None:
    """The declaration resolved, or None where `resources.stage_level_scheduling` is off."""
    if not cfg.get("resources.stage_level_scheduling"):
        return None
    return declared.resolve(cfg)


def supports_stage_level(master: str) -> bool:
    """Whether Spark schedules a stage under a ResourceProfile with this master."""
    return (master or "").strip().startswith(STAGE_LEVEL_MASTERS)


def _number(conf: Mapping[str, str], key: str, default: float) -> float:
    try:
        return float(conf.get(key, default))
    except (TypeError, ValueError):
        return default


def task_requests(resources: TaskResources | None, master: str,
                  conf: Mapping[str, str]) -> dict[str, float] | None:
    """What to ask Spark for per task: {"cpus": n} and {"gpu": share} where executors have
    GPUs; None where nothing is applied (local mode, switched off, or the session's default
    task already fits). A declared amount below the session's default keeps the default:
    the declaration is what the task needs at least, as every task of the session gets."""
    if resources is None or not supports_stage_level(master):
        return None
    declared_cpus, declared_gpus = int(resources.cpus), float(resources.gpus)   # resolve()d: numbers
    default_cpus = int(_number(conf, "spark.task.cpus", 1))
    default_gpus = _number(conf, "spark.task.resource.gpu.amount", 0.0)
    cpus = max(declared_cpus, default_cpus)
    cores = int(_number(conf, "spark.executor.cores", 0))
    if cores and cpus > cores:
        log.warning("a task asks for %d cpus but spark.executor.cores is %d: asking for %d", cpus, cores, cores)
        cpus = max(cores, default_cpus)
    gpus = default_gpus
    if _number(conf, "spark.executor.resource.gpu.amount", 0.0) > 0:
        gpus = max(declared_gpus, default_gpus)
    if cpus == default_cpus and gpus == default_gpus:
        return None
    return {"cpus": cpus, **({"gpu": gpus} if gpus > 0 else {})}


def resource_profile(requests: Mapping[str, float]):
    """A pyspark ResourceProfile with these task requests (a Java one when a SparkContext
    is up, else pyspark's plain-Python form)."""
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests
    task = TaskResourceRequests().cpus(int(requests["cpus"]))
    if requests.get("gpu"):
        task = task.resource("gpu", float(requests["gpu"]))
    return ResourceProfileBuilder().require(task).build


def spark_profile(spark, resources: TaskResources | None):
    """The ResourceProfile for a stage's heavy mapInPandas / mapInArrow in this session, or
    None (run under the session's default task resources)."""
    if resources is None:
        return None
    sc = spark.sparkContext
    requests = task_requests(resources, sc.master, dict(sc.getConf().getAll()))
    if requests is None:
        return None
    log.info("stage-level scheduling: %s per task (master %s)", requests, sc.master)
    return resource_profile(requests)
