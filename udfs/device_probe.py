"""What each Spark task sees of the accelerators (`realsyn doctor`): its host, the GPUs torch
finds there and the GPU addresses Spark assigned it."""
from __future__ import annotations


def probe_devices(_partition):
    """mapPartitions body (`realsyn doctor`): this task's host, the GPUs torch sees there
    (-1: no torch) and the GPU addresses Spark assigned the task."""
    import socket
    from pyspark import TaskContext
    ctx = TaskContext.get()
    gpu = ctx.resources().get("gpu") if ctx is not None else None
    try:
        import torch
        count = torch.cuda.device_count()
    except ImportError:
        count = -1
    yield socket.gethostname(), count, tuple(gpu.addresses) if gpu is not None else ()
