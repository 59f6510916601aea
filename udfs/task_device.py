"""The accelerator Spark assigned to the running task (TaskContext.resources()), if any.

Which tasks get a GPU is the cluster's and the profile's business (spark.task.resource.gpu.amount);
the model and search code only follow the assignment, so no code asks which profile runs.
"""
from __future__ import annotations


def assigned_gpu() -> str | None:
    """The address of the first GPU Spark gave this task; None on the driver or without one."""
    try:
        from pyspark import TaskContext
        ctx = TaskContext.get()
        gpus = ctx.resources().get("gpu") if ctx is not None else None
        if gpus is not None and gpus.addresses:
            return str(gpus.addresses[0])
    except Exception:   # no Spark here (a plain process): no assignment
        pass
    return None
