"""Checks for the free-form `spark.conf` section: key names, value syntax, resource sums.

Pure Python (no Spark session): `load_config` runs it on every resolved config, and
tests run it on every profile. Two severities:

- error: the session would fail to start or schedule (a task asks for more GPU than an
  executor has, a fractional amount Spark refuses, a memory size Spark cannot parse...).
- warning: the key is not one we know. Spark, Delta, RAPIDS and Databricks together
  have thousands of settings and new ones each release, so an unknown key may well be
  valid; refusing it would block users. A typo, though, is silently ignored by Spark,
  so we say so, with the nearest known key.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence

# Settings this project uses or documents, plus the common ones a user is likely to set.
# Sources: Spark 4.2 configuration pages, Delta 4.4, RAPIDS Accelerator 25.10, Databricks.
KNOWN_KEYS = frozenset({
    # application, driver, executor
    "spark.app.name", "spark.master", "spark.submit.deployMode", "spark.submit.pyFiles",
    "spark.driver.memory", "spark.driver.cores", "spark.driver.maxResultSize",
    "spark.driver.memoryOverhead", "spark.driver.extraJavaOptions", "spark.driver.extraClassPath",
    "spark.driver.extraLibraryPath", "spark.driver.host", "spark.driver.bindAddress",
    "spark.executor.memory", "spark.executor.cores", "spark.executor.instances",
    "spark.executor.memoryOverhead", "spark.executor.memoryOverheadFactor",
    "spark.executor.pyspark.memory", "spark.executor.extraJavaOptions",
    "spark.executor.extraClassPath", "spark.executor.extraLibraryPath",
    "spark.executor.heartbeatInterval", "spark.task.cpus", "spark.task.maxFailures",
    "spark.cores.max", "spark.default.parallelism", "spark.local.dir", "spark.logConf",
    "spark.jars", "spark.jars.packages", "spark.jars.repositories", "spark.jars.ivy",
    "spark.jars.excludes", "spark.files", "spark.archives", "spark.plugins",
    "spark.pyspark.python", "spark.pyspark.driver.python", "spark.python.worker.memory",
    "spark.python.worker.reuse", "spark.serializer", "spark.kryoserializer.buffer.max",
    "spark.network.timeout", "spark.rpc.message.maxSize", "spark.ui.enabled", "spark.ui.port",
    "spark.ui.showConsoleProgress", "spark.eventLog.enabled", "spark.eventLog.dir",
    "spark.memory.fraction", "spark.memory.storageFraction", "spark.memory.offHeap.enabled",
    "spark.memory.offHeap.size", "spark.shuffle.service.enabled", "spark.speculation",
    "spark.locality.wait", "spark.scheduler.mode", "spark.checkpoint.dir",
    "spark.dynamicAllocation.enabled", "spark.dynamicAllocation.minExecutors",
    "spark.dynamicAllocation.maxExecutors", "spark.dynamicAllocation.initialExecutors",
    "spark.dynamicAllocation.executorIdleTimeout",
    "spark.dynamicAllocation.shuffleTracking.enabled",
    "spark.yarn.queue", "spark.yarn.maxAppAttempts", "spark.yarn.dist.files",
    "spark.yarn.dist.archives", "spark.yarn.archive", "spark.yarn.jars",
    # SQL
    "spark.sql.shuffle.partitions", "spark.sql.adaptive.enabled",
    "spark.sql.adaptive.coalescePartitions.enabled", "spark.sql.adaptive.skewJoin.enabled",
    "spark.sql.adaptive.advisoryPartitionSizeInBytes", "spark.sql.autoBroadcastJoinThreshold",
    "spark.sql.files.maxPartitionBytes", "spark.sql.files.maxRecordsPerFile",
    "spark.sql.session.timeZone", "spark.sql.ansi.enabled", "spark.sql.extensions",
    "spark.sql.catalog.spark_catalog", "spark.sql.catalogImplementation",
    "spark.sql.warehouse.dir", "spark.sql.sources.partitionOverwriteMode",
    "spark.sql.parquet.compression.codec", "spark.sql.parquet.enableVectorizedReader",
    "spark.sql.execution.arrow.pyspark.enabled", "spark.sql.execution.arrow.pyspark.fallback.enabled",
    "spark.sql.execution.arrow.maxRecordsPerBatch", "spark.sql.execution.pythonUDF.arrow.enabled",
    "spark.sql.debug.maxToStringFields", "spark.sql.legacy.timeParserPolicy",
    # Delta Lake (OSS keys keep the spark.databricks.delta prefix)
    "spark.databricks.delta.snapshotPartitions", "spark.databricks.delta.optimizeWrite.enabled",
    "spark.databricks.delta.autoCompact.enabled", "spark.databricks.delta.schema.autoMerge.enabled",
    "spark.databricks.delta.retentionDurationCheck.enabled",
    "spark.databricks.delta.vacuum.parallelDelete.enabled",
    "spark.databricks.delta.merge.repartitionBeforeWrite.enabled",
    "spark.databricks.delta.checkpoint.partSize", "spark.databricks.delta.stalenessLimit",
    # Databricks-only
    "spark.databricks.io.cache.enabled", "spark.databricks.cluster.profile",
    "spark.databricks.adaptive.autoOptimizeShuffle.enabled",
    # RAPIDS Accelerator
    "spark.rapids.sql.enabled", "spark.rapids.sql.concurrentGpuTasks", "spark.rapids.sql.explain",
    "spark.rapids.sql.batchSizeBytes", "spark.rapids.sql.incompatibleOps.enabled",
    "spark.rapids.sql.variableFloatAgg.enabled", "spark.rapids.sql.multiThreadedRead.numThreads",
    "spark.rapids.sql.python.gpu.enabled", "spark.rapids.memory.pinnedPool.size",
    "spark.rapids.memory.gpu.allocFraction", "spark.rapids.memory.gpu.maxAllocFraction",
    "spark.rapids.memory.gpu.minAllocFraction", "spark.rapids.memory.gpu.reserve",
    "spark.rapids.memory.gpu.pool", "spark.rapids.memory.host.spillStorageSize",
    "spark.rapids.python.concurrentPythonWorkers",
    "spark.rapids.python.memory.gpu.allocFraction", "spark.rapids.python.memory.gpu.maxAllocFraction",
    "spark.rapids.python.memory.gpu.pooling.enabled", "spark.rapids.shuffle.mode",
    "spark.rapids.cloudSchemes", "spark.rapids.filecache.enabled",
    "spark.shuffle.manager",
})

# Families whose members are open-ended (names chosen by the user or the platform).
KNOWN_PREFIXES = (
    "spark.hadoop.",                 # any Hadoop setting, e.g. spark.hadoop.fs.s3a.*
    "spark.executorEnv.",            # environment variables of executors
    "spark.yarn.appMasterEnv.",      # ... and of the YARN application master
    "spark.kubernetes.",
    "spark.sql.catalog.",            # spark.sql.catalog.<name>[.<option>]
    "spark.databricks.delta.properties.defaults.",  # default table properties
    "spark.rapids.sql.expression.", "spark.rapids.sql.exec.",   # per-operator switches
    "spark.rapids.sql.format.", "spark.rapids.sql.input.",
    "spark.eventLog.", "spark.history.", "spark.ssl.", "spark.authenticate",
)

# spark.{driver,executor,worker}.resource.<name>.{amount,discoveryScript,vendor}; task: amount only.
RESOURCE_KEY = re.compile(r"^spark\.(driver|executor|worker)\.resource\.([A-Za-z0-9_-]+)\.(amount|discoveryScript|vendor)$")
TASK_RESOURCE_KEY = re.compile(r"^spark\.task\.resource\.([A-Za-z0-9_-]+)\.amount$")
RESOURCE_LIKE = re.compile(r"^spark\.(driver|executor|worker|task)\.resource\.")

SIZE_KEYS = {
    "spark.driver.memory", "spark.driver.maxResultSize", "spark.driver.memoryOverhead",
    "spark.executor.memory", "spark.executor.memoryOverhead", "spark.executor.pyspark.memory",
    "spark.python.worker.memory", "spark.memory.offHeap.size", "spark.kryoserializer.buffer.max",
    "spark.sql.files.maxPartitionBytes", "spark.sql.adaptive.advisoryPartitionSizeInBytes",
    "spark.rapids.memory.pinnedPool.size", "spark.rapids.sql.batchSizeBytes",
    "spark.rapids.memory.gpu.reserve", "spark.rapids.memory.host.spillStorageSize",
}
# Sizes where Spark also accepts -1 (off).
SIZE_OR_OFF_KEYS = {"spark.sql.autoBroadcastJoinThreshold"}
POSITIVE_INT_KEYS = {
    "spark.executor.cores", "spark.driver.cores", "spark.task.cpus", "spark.executor.instances",
    "spark.cores.max", "spark.default.parallelism", "spark.sql.shuffle.partitions",
    "spark.databricks.delta.snapshotPartitions", "spark.rapids.sql.concurrentGpuTasks",
    "spark.rapids.python.concurrentPythonWorkers", "spark.task.maxFailures",
    "spark.sql.execution.arrow.maxRecordsPerBatch", "spark.rapids.sql.multiThreadedRead.numThreads",
    "spark.dynamicAllocation.minExecutors", "spark.dynamicAllocation.maxExecutors",
}
# 0 is valid: no minimum / RAPIDS "unlimited".
ZERO_OK_INT_KEYS = {"spark.dynamicAllocation.minExecutors", "spark.rapids.python.concurrentPythonWorkers"}
BOOL_KEYS = {k for k in KNOWN_KEYS if k.endswith((".enabled", ".reuse", ".logConf"))} | {
    "spark.speculation", "spark.ui.showConsoleProgress"}
FRACTION_KEYS = {"spark.rapids.memory.gpu.allocFraction", "spark.rapids.memory.gpu.maxAllocFraction",
                 "spark.rapids.memory.gpu.minAllocFraction", "spark.memory.fraction",
                 "spark.memory.storageFraction", "spark.rapids.python.memory.gpu.allocFraction",
                 "spark.rapids.python.memory.gpu.maxAllocFraction"}
# Set by spark-submit / the cluster manager; in the session they are ignored or, worse,
# contradict how the driver was really started (spark.submit.deployMode=cluster in a
# client-mode driver makes SparkContext refuse to start on YARN).
SUBMIT_TIME_KEYS = {"spark.submit.deployMode"}

RAPIDS_PLUGIN = "com.nvidia.spark.SQLPlugin"
# Spark's byte-size syntax (JavaUtils.byteStringAs): digits and an optional unit.
SIZE_RE = re.compile(r"^\d+(b|k|kb|m|mb|g|gb|t|tb|p|pb)?$", re.IGNORECASE)


class Problem(str):
    """A message (a plain str) that also carries its severity ('error' or 'warning') and
    the first setting it names (so the config loader can say which file set it)."""

    severity: str
    key: str

    def __new__(cls, severity: str, message: str) -> "Problem":
        obj = super().__new__(cls, message)
        obj.severity = severity
        named = re.search(r"'([^']+)'", message)
        obj.key = named.group(1) if named else ""
        return obj


def _error(msg: str) -> Problem:
    return Problem("error", msg)


def _warning(msg: str) -> Problem:
    return Problem("warning", msg)


def errors(problems: Sequence[str]) -> list[str]:
    return [p for p in problems if getattr(p, "severity", "error") == "error"]


def warnings(problems: Sequence[str]) -> list[str]:
    return [p for p in problems if getattr(p, "severity", "error") == "warning"]


def is_known_key(key: str) -> bool:
    return (key in KNOWN_KEYS or key.startswith(KNOWN_PREFIXES)
            or bool(RESOURCE_KEY.match(key) or TASK_RESOURCE_KEY.match(key)))


def _suggest(key: str) -> str:
    # Compare against known keys and the resource patterns filled in with the user's name.
    candidates = list(KNOWN_KEYS)
    m = re.match(r"^spark\.(driver|executor|worker|task)\.resource\.([^.]+)\.", key)
    if m:
        name = m.group(2)
        fields = ("amount",) if m.group(1) == "task" else ("amount", "discoveryScript", "vendor")
        candidates += [f"spark.{m.group(1)}.resource.{name}.{f}" for f in fields]
    hint = difflib.get_close_matches(key, candidates, n=1, cutoff=0.8)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def parse_size(text: str) -> bool:
    return bool(SIZE_RE.match(text.strip()))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?\d+", text.strip()) else None


def check_spark_conf(conf: Mapping[str, object]) -> list[Problem]:
    """Problems in a spark.conf mapping; each is a Problem (a str with .severity)."""
    settings = {str(k): str(v).strip() if not isinstance(v, bool) else str(v).lower() for k, v in conf.items()}
    problems: list[Problem] = []

    for key, value in settings.items():
        if not key.startswith("spark."):
            problems.append(_warning(
                f"'{key}' does not start with 'spark.'; Spark ignores it"
                f"{' (Hadoop settings go under spark.hadoop.)' if key.startswith(('fs.', 'mapreduce.')) else ''}"))
            continue
        if not is_known_key(key):
            if RESOURCE_LIKE.match(key):  # a resource key with a bad shape is never valid
                problems.append(_error(f"'{key}' is not a Spark resource setting{_suggest(key)}"))
            else:
                problems.append(_warning(f"unknown Spark setting '{key}'{_suggest(key)}; Spark ignores keys it does not know"))
        if key in SUBMIT_TIME_KEYS:
            problems.append(_warning(f"'{key}' is a spark-submit setting (--deploy-mode); set in the session "
                                     "it is ignored or contradicts how the driver was started"))
        problems.extend(_check_value(key, value))

    problems.extend(_check_resources(settings))
    problems.extend(_check_rapids(settings))
    return problems


def _check_value(key: str, value: str) -> list[Problem]:
    if key in SIZE_KEYS and not parse_size(value):
        return [_error(f"'{key}' = {value!r} is not a size Spark can parse (e.g. 512m, 4g)")]
    if key in SIZE_OR_OFF_KEYS and value != "-1" and not parse_size(value):
        return [_error(f"'{key}' = {value!r} is not a size (e.g. 10m) or -1")]
    if key in POSITIVE_INT_KEYS:
        n = _int(value)
        low = 0 if key in ZERO_OK_INT_KEYS else 1
        if n is None or n < low:
            return [_error(f"'{key}' = {value!r} must be an integer >= {low}")]
    if key in BOOL_KEYS and value.lower() not in ("true", "false"):
        return [_error(f"'{key}' = {value!r} must be true or false")]
    if key in FRACTION_KEYS:
        x = _number(value)
        if x is None or not 0 < x <= 1:
            return [_error(f"'{key}' = {value!r} must be a fraction in (0, 1]")]
    return []


def _check_resources(conf: dict[str, str]) -> list[Problem]:
    out: list[Problem] = []
    cores = _int(conf.get("spark.executor.cores", "")) or None
    task_cpus = _int(conf.get("spark.task.cpus", "1")) or 1
    executor_amounts: dict[str, float] = {}
    for key, value in conf.items():
        m = RESOURCE_KEY.match(key)
        if m and m.group(3) == "amount":
            n = _int(value)
            if n is None or n < 1:
                out.append(_error(f"'{key}' = {value!r} must be a whole number >= 1"))
                continue
            if m.group(1) == "executor":
                executor_amounts[m.group(2)] = n
            if m.group(1) in ("executor", "worker") and not conf.get(
                    f"spark.{m.group(1)}.resource.{m.group(2)}.discoveryScript"):
                out.append(_error(
                    f"'{key}' is set but 'spark.{m.group(1)}.resource.{m.group(2)}.discoveryScript' is not: "
                    f"Spark needs a script that lists the {m.group(2)} addresses (deploy/gpu/getGpusResources.sh)"))
    if cores and task_cpus > cores:
        out.append(_error(f"'spark.task.cpus' ({task_cpus}) exceeds 'spark.executor.cores' ({cores}): no task can run"))
    for key, value in conf.items():
        m = TASK_RESOURCE_KEY.match(key)
        if not m:
            continue
        name = m.group(1)
        amount = _number(value)
        if amount is None or amount <= 0:
            out.append(_error(f"'{key}' = {value!r} must be a positive number"))
            continue
        if amount > 1 and amount != int(amount):
            out.append(_error(f"'{key}' = {value!r}: amounts above 1 must be whole numbers"))
            continue
        if 0.5 < amount < 1:
            out.append(_error(f"'{key}' = {value!r}: a fractional amount must be at most 0.5 "
                              "(it is the share of one device; 1/amount tasks share it)"))
            continue
        executor = executor_amounts.get(name)
        if executor is None:
            out.append(_error(f"'{key}' is set but 'spark.executor.resource.{name}.amount' is not"))
            continue
        if amount > executor:
            out.append(_error(f"'{key}' ({value}) exceeds 'spark.executor.resource.{name}.amount' ({executor:g}): "
                              "no task could ever be scheduled"))
            continue
        # Concurrent tasks per executor: by cores, and by this resource. Spark runs the
        # smaller number; the other resource then sits partly idle.
        by_resource = int(executor // amount) if amount >= 1 else int(executor * math.floor(1 / amount + 1e-9))
        if cores:
            by_cores = cores // task_cpus
            slots = (f"'spark.executor.cores' ({cores}) / spark.task.cpus ({task_cpus}) = {by_cores} task slots, "
                     f"spark.executor.resource.{name}.amount ({executor:g}) / spark.task.resource.{name}.amount "
                     f"({amount:g}) = {by_resource}")
            if by_resource < by_cores:
                out.append(_warning(f"{slots}: {by_cores - by_resource} core slot(s) stay idle (a task amount of "
                                    f"{executor / by_cores:g} would use them)"))
            elif by_resource > by_cores:
                out.append(_warning(f"{slots}: part of each {name} is never used"))
    return out


def _check_rapids(conf: dict[str, str]) -> list[Problem]:
    plugins = [p.strip() for p in conf.get("spark.plugins", "").split(",") if p.strip()]
    rapids_keys = [k for k in conf if k.startswith("spark.rapids.")]
    if RAPIDS_PLUGIN not in plugins:
        if rapids_keys:
            return [_warning(f"{', '.join(sorted(rapids_keys)[:3])}... set but spark.plugins lacks "
                             f"{RAPIDS_PLUGIN}: RAPIDS is off and these do nothing")]
        return []
    out: list[Problem] = []
    gpus = _int(conf.get("spark.executor.resource.gpu.amount", ""))
    if gpus is None:
        out.append(_error(f"spark.plugins has {RAPIDS_PLUGIN} but 'spark.executor.resource.gpu.amount' is not set"))
    elif gpus != 1:
        out.append(_error(f"'spark.executor.resource.gpu.amount' = {gpus}: the RAPIDS Accelerator uses one GPU "
                          "per executor; run more executors instead"))
    cores = _int(conf.get("spark.executor.cores", ""))
    workers = _int(conf.get("spark.rapids.python.concurrentPythonWorkers", ""))
    if workers and cores and workers > cores:
        out.append(_error(f"'spark.rapids.python.concurrentPythonWorkers' ({workers}) exceeds 'spark.executor.cores' "
                          f"({cores}): at most {cores} Python workers run per executor"))
    gpu_tasks = _int(conf.get("spark.rapids.sql.concurrentGpuTasks", ""))
    if gpu_tasks and cores and gpu_tasks > cores:
        out.append(_warning(f"'spark.rapids.sql.concurrentGpuTasks' ({gpu_tasks}) exceeds 'spark.executor.cores' "
                            f"({cores}); only {cores} tasks run at once"))
    lo, mid, hi = (_number(conf.get(f"spark.rapids.memory.gpu.{k}AllocFraction" if k else
                                    "spark.rapids.memory.gpu.allocFraction", ""))
                   for k in ("min", "", "max"))
    # RAPIDS defaults: min 0.25, alloc 1.0, max 1.0.
    lo, mid, hi = (0.25 if lo is None else lo), (1.0 if mid is None else mid), (1.0 if hi is None else hi)
    if not lo <= mid <= hi:
        out.append(_error(f"RAPIDS GPU pool fractions must satisfy minAllocFraction ({lo:g}) <= allocFraction "
                          f"({mid:g}) <= maxAllocFraction ({hi:g})"))
    # The executor's pool and its Python workers' pools share one GPU.
    py = _number(conf.get("spark.rapids.python.memory.gpu.allocFraction", ""))
    if py is not None and py + mid > 1:
        out.append(_error(f"'spark.rapids.python.memory.gpu.allocFraction' ({py:g}) + "
                          f"'spark.rapids.memory.gpu.allocFraction' ({mid:g}) exceed the whole GPU"))
    return out
