"""`realsyn doctor`: what a job on the chosen profile will need, and whether it is here.

One line per check. Each check is a small function returning a Check record; what it reads
from the machine (environment, files, versions, a probe) comes in as arguments with the
real thing as the default, so the tests give it a made-up machine. Nothing is downloaded or
written, no secret is printed (credentials are named by where they come from), and no
SparkSession starts unless --spark asks for one (to see the executors' GPUs).
"""
from __future__ import annotations

import configparser
import glob
import os
import re
import shutil
import socket
import urllib.error
import urllib.request
import warnings
from urllib.parse import urlparse
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Mapping

from realsyn.jobs.core.config import Config
from realsyn.jobs.core.redact import redact_text
from realsyn.udfs.device_probe import probe_devices

# The roles a stage loads weights for (jobs/core/models.py weights_folder); the tagger is the CLIP.
MODEL_ROLES = ("clip", "captioner", "llm", "ppl_lm")
# Keys of a GPU discovery script in spark.conf (executor: the profile's; driver, worker: optional).
DISCOVERY_KEYS = tuple(f"spark.{who}.resource.gpu.discoveryScript" for who in ("executor", "driver", "worker"))
RAPIDS_PLUGIN = "com.nvidia.spark.SQLPlugin"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""          # the setting (or variable) to change when not ok
    required: bool = True  # a failing optional check warns; only required ones set the exit status

    def line(self) -> str:
        mark = "ok" if self.ok else "FAIL" if self.required else "warn"
        fix = f"  -> fix: {self.fix}" if self.fix and not self.ok else ""
        return redact_text(f"{mark:<4}  {self.name}: {self.detail}{fix}")


def installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def delta_spark_minor(delta_package: str) -> str:
    """'io.delta:delta-spark_4.2_2.13:4.4.0' -> '4.2' (the Spark the Delta jars are built for)."""
    match = re.search(r"delta-spark_(\d+\.\d+)_", delta_package)
    return match.group(1) if match else ""


def project_pin(package: str, requirements: str | None = None) -> str | None:
    """The version requirements.txt pins (a checkout only: the wheel carries no requirements)."""
    from realsyn.jobs.core.session import PROJECT_ROOT
    path = requirements or str(PROJECT_ROOT / "requirements.txt")
    try:
        with open(path) as fh:
            for line in fh:
                name, _, version = line.strip().partition("==")
                if name.strip().lower() == package:
                    return version.split(";")[0].strip()
    except OSError:
        pass
    return None


def check_java(profile: str, env: Mapping[str, str] = os.environ, which: Callable = shutil.which) -> Check:
    if profile == "databricks":
        return Check("java", True, "the Databricks runtime's")
    home = env.get("JAVA_HOME", "")
    java = os.path.join(home, "bin", "java") if home else which("java")
    if java and os.access(java, os.X_OK):
        return Check("java", True, f"{java} (Spark 4 needs Java 17 or 21)")
    where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH"
    return Check("java", False, f"{where}; the driver cannot start Spark's JVM", "JAVA_HOME (a Java 17 install)")


def check_spark(profile: str, delta_package: str, pyspark: str | None, pinned: str | None) -> Check:
    if profile == "databricks":
        return Check("spark", True, f"the Databricks runtime's (pyspark {pyspark or 'not installed here'})")
    if not pyspark:
        return Check("spark", False, "pyspark is not installed", f"the venv: pip install pyspark=={pinned or '4.2.0'}")
    wanted = delta_spark_minor(delta_package)
    pin = f"; the project pins {pinned}" if pinned else ""
    if wanted and ".".join(pyspark.split(".")[:2]) != wanted:
        return Check("spark", False, f"pyspark {pyspark}, but jvm.delta_package {delta_package} is built for "
                     f"Spark {wanted}{pin}", f"jvm.delta_package (a Delta built for Spark {pyspark}), or pyspark {wanted}.x")
    return Check("spark", True, f"pyspark {pyspark}, jvm.delta_package built for Spark {wanted}{pin}")


def check_delta_python(profile: str, delta_package: str, delta_spark: str | None) -> Check:
    jars = delta_package.rsplit(":", 1)[-1]
    if profile == "databricks":
        return Check("delta python", True, "the Databricks runtime's")
    if delta_spark == jars:
        return Check("delta python", True, f"delta-spark {delta_spark}, as the jars ({delta_package})")
    have = f"delta-spark {delta_spark}" if delta_spark else "delta-spark is not installed"
    return Check("delta python", False, f"{have}, the jars are {jars}",
                 f"the venv: pip install delta-spark=={jars} (or jvm.delta_package)")


def check_delta_jars(cfg: Config) -> Check:
    """The jars the session would use (jobs/session.delta_jars), never fetched here."""
    from realsyn.jobs.core.session import SparkSetupError, assembly_jar, delta_jars
    if cfg.profile == "databricks":
        return Check("delta jars", True, "the Databricks runtime's")
    package = cfg.get("jvm.delta_package")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            assembly = assembly_jar(cfg)
            jars = delta_jars(cfg)
        except SparkSetupError as err:
            return Check("delta jars", False, str(err), "jvm.assembly_jar (make assembly, or \"\" for none)")
    stale = f" ({caught[0].message})" if caught else ""
    if assembly:
        return Check("delta jars", True, f"assembly {assembly} (built for {package.rsplit(':', 1)[-1]})")
    if jars:
        return Check("delta jars", True, f"{len(jars)} jars in {os.path.dirname(jars[0])}{stale}")
    return Check("delta jars", False, f"none local{stale}: Spark resolves {package} from Maven Central at first "
                 "start (needs the network; spark-submit needs `realsyn submit-args`)",
                 "jvm.jars_dir or REALSYN_JARS_DIR (make jars)", required=False)


def check_master(master: str, profile: str, env: Mapping[str, str] = os.environ,
                 connect: Callable[[str, int], bool] | None = None, hadoop_conf: str = "/etc/hadoop/conf") -> Check:
    connect = connect or reachable
    if profile == "databricks" or not master:
        return Check("spark master", True, "the cluster's" if profile == "databricks"
                     else "none in the config: spark-submit's --master, else local")
    if master.startswith("local"):
        return Check("spark master", True, master)
    if master == "yarn":
        # spark-env.sh points Spark at /etc/hadoop/conf on EMR, also where a shell has no variable.
        conf = env.get("HADOOP_CONF_DIR") or env.get("YARN_CONF_DIR") or (
            hadoop_conf if os.path.isfile(os.path.join(hadoop_conf, "yarn-site.xml")) else "")
        if conf and os.path.isdir(conf):
            return Check("spark master", True, f"yarn (cluster config in {conf})")
        return Check("spark master", False, f"yarn, but neither HADOOP_CONF_DIR / YARN_CONF_DIR nor {hadoop_conf} "
                     "tells Spark where the ResourceManager is", "HADOOP_CONF_DIR")
    if master.startswith("spark://"):
        hosts = [h.rsplit(":", 1) for h in master[len("spark://"):].split(",")]
        up = [f"{h}:{p}" for h, p in hosts if p.isdigit() and connect(h, int(p))]
        if up:
            return Check("spark master", True, f"{master} (accepts connections at {up[0]})")
        return Check("spark master", False, f"{master}: nothing accepts connections there", "spark.master")
    return Check("spark master", True, f"{master} (not probed)")


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def executors_have_gpus(spark_conf: Mapping[str, str]) -> bool:
    """Whether the config gives executors GPUs (what the tasks are assigned, never the
    profile's name: tests/unit/test_resources.py)."""
    try:
        return float(spark_conf.get("spark.executor.resource.gpu.amount") or 0) > 0
    except ValueError:
        return False


def check_torch(executor_gpus: bool, torch_version: str | None, cuda_build: str | None, gpus: int) -> Check:
    """The driver's torch; where executors have GPUs the same venv runs on the workers,
    whose model tasks need a CUDA build (the driver itself may have no GPU)."""
    if torch_version is None:
        return Check("torch", False, "torch is not installed", "the venv (requirements.lock)")
    build = f"CUDA {cuda_build} build" if cuda_build else "CPU-only build"
    seen = f"{gpus} GPU(s) seen here (torch.cuda)"
    if executor_gpus and not cuda_build:
        return Check("torch", False, f"torch {torch_version}, {build}; {seen}: the model tasks cannot use the "
                     "executors' GPUs", "the venv's torch (a CUDA build)")
    return Check("torch", True, f"torch {torch_version}, {build}; {seen}")


def check_discovery_scripts(spark_conf: Mapping[str, str]) -> list[Check]:
    """Every GPU discovery script the config names: there, and executable. (The script must
    be at that path on every worker; this checks the node it runs on.)"""
    out = []
    for key in DISCOVERY_KEYS:
        path = spark_conf.get(key)
        if not path:
            continue
        fix = f"spark.conf.{key} (deploy/gpu/getGpusResources.sh, chmod +x)"
        if not os.path.isfile(path):
            out.append(Check("gpu discovery", False, f"{key}={path} does not exist on this node", fix))
        elif not os.access(path, os.X_OK):
            out.append(Check("gpu discovery", False, f"{key}={path} is not executable", fix))
        else:
            out.append(Check("gpu discovery", True, f"{key}={path}, executable"))
    return out


def check_rapids(spark_conf: Mapping[str, str], env: Mapping[str, str] = os.environ) -> Check | None:
    """The RAPIDS Accelerator jar where the driver's JVM finds it, when the plugin is set."""
    if RAPIDS_PLUGIN not in spark_conf.get("spark.plugins", ""):
        return None
    places = [p for key in ("spark.jars", "spark.driver.extraClassPath")
              for p in re.split(r"[,:]", spark_conf.get(key, "")) if p]
    folders = [os.path.join(env[v], "jars") for v in ("SPARK_HOME",) if env.get(v)]
    try:
        import pyspark
        folders.append(os.path.join(os.path.dirname(pyspark.__file__), "jars"))
    except ImportError:
        pass
    found = [p for p in places if "rapids-4-spark" in os.path.basename(p) and glob.glob(p)]
    found += [j for folder in folders for j in glob.glob(os.path.join(folder, "rapids-4-spark*.jar"))]
    if found:
        return Check("rapids jar", True, found[0])
    return Check("rapids jar", False, f"spark.plugins names {RAPIDS_PLUGIN}, but no rapids-4-spark jar is in "
                 "spark.jars, spark.driver.extraClassPath or $SPARK_HOME/jars",
                 "spark.conf.spark.jars (or copy the jar into $SPARK_HOME/jars)")


def check_s3a(cfg: Config) -> Check:
    from realsyn.jobs.core import object_store
    if not object_store.connector_wanted(cfg):
        own = {"emr": "EMRFS and EMR's S3A", "databricks": "the Databricks runtime's"}.get(cfg.profile)
        if own:
            return Check("s3a jars", True, f"{own} connector")
        return Check("s3a jars", True, f"storage.s3.connector={cfg.get('storage.s3.connector')}: "
                     "the session adds none (yours must be on the classpath)")
    jars, packages = object_store.connector_jars(cfg)
    if jars:
        return Check("s3a jars", True, f"{len(jars)} jars in {os.path.dirname(jars[0])}")
    return Check("s3a jars", False, f"none local: Spark resolves {', '.join(packages)} from Maven Central at first "
                 "start (needs the network)", "jvm.jars_dir or REALSYN_JARS_DIR (make s3-jars)", required=False)


def aws_profiles(env: Mapping[str, str], home: str) -> set[str]:
    """Profile names in the shared files (section names only: no value is read)."""
    names: set[str] = set()
    for var, default, prefix in (("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", ""),
                                 ("AWS_CONFIG_FILE", ".aws/config", "profile ")):
        parser = configparser.RawConfigParser()
        try:
            parser.read(env.get(var) or os.path.join(home, default))
        except configparser.Error:
            continue
        for section in parser.sections():
            names.add(section[len(prefix):] if prefix and section.startswith(prefix) else section)
    return names


def check_credentials(profile: str, env: Mapping[str, str] = os.environ, home: str | None = None) -> Check:
    """Which source of the AWS SDK's default chain (the one S3A, pyarrow and boto3 share)
    provides credentials, first to last; names of variables and profiles only."""
    home = home if home is not None else os.path.expanduser("~")
    key, secret = bool(env.get("AWS_ACCESS_KEY_ID")), bool(env.get("AWS_SECRET_ACCESS_KEY"))
    if key and secret:
        token = ", AWS_SESSION_TOKEN" if env.get("AWS_SESSION_TOKEN") else ""
        return Check("s3 credentials", True, f"environment variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY{token}")
    if key or secret:
        have, missing = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")[::1 if key else -1]
        return Check("s3 credentials", False, f"{have} is set without {missing}", missing)
    profiles = aws_profiles(env, home)
    if env.get("AWS_PROFILE"):
        name = env["AWS_PROFILE"]
        if name in profiles:
            return Check("s3 credentials", True, f"shared profile {name!r} (AWS_PROFILE)")
        return Check("s3 credentials", False, f"AWS_PROFILE={name}, but no such profile in ~/.aws/credentials "
                     "or ~/.aws/config", "AWS_PROFILE")
    if "default" in profiles:
        return Check("s3 credentials", True, "shared profile 'default' (~/.aws)")
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return Check("s3 credentials", True, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)")
    container = [v for v in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
                 if env.get(v)]
    if container:
        return Check("s3 credentials", True, f"the container's role ({container[0]})")
    if profile == "emr":
        return Check("s3 credentials", True, "the nodes' instance role (EMR's EC2 role; not probed from here)")
    return Check("s3 credentials", False, "none in the environment or ~/.aws: only an instance role is left "
                 "(unknown: not probed)", "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                 required=False)


def check_locations(cfg: Config) -> Check:
    """The object store locations, none of them a deploy file's placeholder left unedited."""
    from realsyn.jobs.core import object_store
    from realsyn.udfs.object_files import is_s3
    found = {k: str(cfg.get(k)) for k in object_store.LOCATION_KEYS if is_s3(str(cfg.get(k) or ""))}
    placeholder = [k for k, v in found.items() if "YOUR-BUCKET" in v]
    if placeholder:
        return Check("s3 locations", False, f"{', '.join(f'{k}={found[k]}' for k in placeholder)} names the "
                     "placeholder bucket", placeholder[0])
    return Check("s3 locations", True, ", ".join(f"{k}={v}" for k, v in found.items()))


def check_endpoint(cfg: Config) -> Check:
    from realsyn.jobs.core import object_store
    url, region = object_store.endpoint(cfg), object_store.region(cfg)
    return Check("s3 endpoint", True, f"{url or 'AWS (no custom endpoint)'}, region "
                 f"{region or 'us-east-1 (default)'}")


def hub_cached(repo: str) -> bool:
    """Whether a hub model is in the local cache (no request is made)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


def check_weights(cfg: Config, env: Mapping[str, str] = os.environ,
                  cached: Callable[[str], bool] = hub_cached) -> list[Check]:
    """Per role: local weights in models.weights_dir/<role> (jobs/models.weights_folder),
    or loaded by name: the tiny preset builds them, a named model comes from the hub."""
    from realsyn.jobs.core.params import preset_model, weights_folder
    offline = any(env.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    out = []
    for role in MODEL_ROLES:
        name, folder = preset_model(cfg, role), weights_folder(cfg, role)
        label = f"weights {role}"
        if folder:
            files = [f for f in glob.glob(os.path.join(folder, "**", "*"), recursive=True) if os.path.isfile(f)]
            clip_ok = role != "clip" or any(f.endswith(".safetensors") for f in files)
            if files and clip_ok:
                out.append(Check(label, True, f"{len(files)} files in {folder}"))
            else:
                what = "does not exist" if not os.path.isdir(folder) else \
                    "has no .safetensors" if files else "is empty"
                out.append(Check(label, False, f"{folder} {what}", "models.weights_dir (or models.weights_roles: "
                                 "the roles the folder holds; the others load by name)"))
            continue
        preset = cfg.get("models.preset")
        if name == "tiny":
            out.append(Check(label, True, f"models.preset={preset}: tiny, built from config (nothing to load)"))
            continue
        fix = "models.weights_dir (or unset HF_HUB_OFFLINE)"
        if role == "clip":
            tag = cfg.get(f"models.presets.{preset}.clip_pretrained")
            if not tag:
                out.append(Check(label, True, f"open_clip {name}, random init (no pretrained tag)"))
            elif offline:   # open_clip's own cache is not looked into: importing open_clip takes seconds
                out.append(Check(label, False, f"open_clip {name} ({tag}): the hub is off (HF_HUB_OFFLINE), so it "
                                 "must be in open_clip's cache already (not checked)", fix, required=False))
            else:
                out.append(Check(label, True, f"open_clip {name} ({tag}): by name from the hub on first use"))
        elif cached(name):
            out.append(Check(label, True, f"{name}: in the local hub cache"))
        elif offline:
            out.append(Check(label, False, f"{name}: not in the local hub cache and the hub is off (HF_HUB_OFFLINE)",
                             fix))
        else:
            out.append(Check(label, True, f"{name}: by name from the hub on first use"))
    return out


def http_status(url: str, timeout: float = 3.0) -> int | None:
    """The HTTP status a GET gets (any status: the server answered), None when none answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def writable_folder(path: str) -> tuple[bool, str]:
    """(writable, the folder checked): the path's nearest existing folder, as mkdir would need."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return os.access(folder, os.W_OK | os.X_OK), folder


def check_mlflow(cfg: Config, env: Mapping[str, str] = os.environ,
                 status: Callable[[str], int | None] = http_status,
                 databrickscfg: str = "~/.databrickscfg") -> Check:
    from realsyn.jobs.core.tracking import tracking_location
    if not cfg.get("mlflow.enabled"):
        return Check("mlflow", True, "off (mlflow.enabled=false)")
    uri, _ = tracking_location(cfg, make_folder=False)
    fix = "mlflow.tracking_uri (or run.work_dir)"
    store = None   # a local store's folder
    if uri.startswith("sqlite:///"):
        store = os.path.dirname(uri[len("sqlite:///"):])
    elif uri.startswith("file:"):
        store = urlparse(uri).path
    elif "://" not in uri and uri != "databricks":
        store = uri
    if store is not None:
        ok, folder = writable_folder(store)
        if ok:
            made = "" if folder == os.path.abspath(store) else ", the first run creates the rest"
            return Check("mlflow", True, f"{uri} ({folder} writable{made})")
        return Check("mlflow", False, f"{uri}: {folder} is not writable", fix)
    if uri.startswith(("http://", "https://")):
        code = status(uri.rstrip("/") + "/health")
        if code is None:
            return Check("mlflow", False, f"{uri}: no answer within 3 s", fix)
        if code in (401, 403):
            return Check("mlflow", False, f"{uri} answers HTTP {code}: it wants credentials",
                         "MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)")
        return Check("mlflow", True, f"{uri} answers (HTTP {code})")
    if uri == "databricks":
        if env.get("DATABRICKS_RUNTIME_VERSION"):
            return Check("mlflow", True, "the workspace tracking server (inside Databricks)")
        names = [v for v in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE") if env.get(v)]
        if names or os.path.exists(os.path.expanduser(databrickscfg)):
            return Check("mlflow", True, f"databricks, credentials from {', '.join(names) or databrickscfg} "
                         "(not probed)")
        return Check("mlflow", False, "databricks, but no DATABRICKS_HOST or ~/.databrickscfg here",
                     "DATABRICKS_HOST and DATABRICKS_TOKEN (or `databricks auth login`)")
    return Check("mlflow", True, f"{uri} (not probed)")


def spark_settings(cfg: Config) -> dict[str, str]:
    return {k: str(v) for k, v in (cfg.get("spark.conf") or {}).items()}


def machine_checks(cfg: Config) -> list[Check]:
    """Every check that needs no Spark session."""
    from realsyn.jobs.core import object_store
    spark_conf = spark_settings(cfg)
    package = cfg.get("jvm.delta_package")
    checks = [check_java(cfg.profile),
              check_spark(cfg.profile, package, installed("pyspark"), project_pin("pyspark")),
              check_delta_python(cfg.profile, package, installed("delta-spark")),
              check_delta_jars(cfg),
              check_master(cfg.get("spark.master") or "", cfg.profile)]
    torch_version, cuda_build, gpus = None, None, 0
    try:
        import torch
        torch_version, cuda_build = torch.__version__, torch.version.cuda
        gpus = torch.cuda.device_count()
    except ImportError:
        pass
    checks.append(check_torch(executors_have_gpus(spark_conf), torch_version, cuda_build, gpus))
    checks += check_discovery_scripts(spark_conf)
    rapids = check_rapids(spark_conf)
    if rapids:
        checks.append(rapids)
    if object_store.uses_s3(cfg):
        checks += [check_locations(cfg), check_s3a(cfg), check_credentials(cfg.profile), check_endpoint(cfg)]
    checks += check_weights(cfg)
    checks.append(check_mlflow(cfg))
    return checks


def executor_gpus(spark, want_gpus: bool) -> Check:
    """One task per slot reports its host, the GPUs torch sees there and the GPU addresses
    Spark assigned it."""
    sc = spark.sparkContext
    slots = max(1, sc.defaultParallelism)
    seen: dict[str, tuple[int, set]] = {}
    for host, count, addresses in sc.parallelize(range(slots), slots).mapPartitions(probe_devices).collect():
        before = seen.get(host, (count, set()))
        seen[host] = (max(before[0], count), before[1] | set(addresses))
    parts = [f"{host}: {count if count >= 0 else 'no torch'} GPU(s)"
             + (f", assigned {','.join(sorted(a))}" if a else "") for host, (count, a) in sorted(seen.items())]
    bare = [h for h, (count, _) in seen.items() if count < 1]
    if want_gpus and bare:
        return Check("executor gpus", False, "; ".join(parts), "the workers' GPUs and driver "
                     "(nvidia-smi), spark.conf.spark.executor.resource.gpu.amount")
    return Check("executor gpus", True, "; ".join(parts))


def run_doctor(cfg: Config, spark: bool = False, say: Callable[[str], None] = print) -> int:
    """Print every check; 0 when every required one passes, else 1."""
    say(redact_text(f"realsyn doctor: profile={cfg.profile} work_dir={cfg.get('run.work_dir')}"))
    checks = machine_checks(cfg)
    for check in checks:
        say(check.line())
    if spark:
        from realsyn.jobs.core.session import get_spark
        try:
            check = executor_gpus(get_spark(cfg), executors_have_gpus(spark_settings(cfg)))
        except Exception as err:   # the point of --spark is to learn why a session does not start
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            check = Check("spark session", False, f"did not start: {first[:300]}", "the checks above, spark.master")
        checks.append(check)
        say(check.line())
    failed = [c.name for c in checks if c.required and not c.ok]
    warned = [c.name for c in checks if not c.required and not c.ok]
    if failed:
        say(f"{len(failed)} required check(s) fail: {', '.join(dict.fromkeys(failed))}")
        return 1
    say("every required check passes" + (f" ({len(warned)} warning(s): {', '.join(warned)})" if warned else ""))
    return 0


def run_doctor_command(args, cfg: Config) -> int:
    """`realsyn doctor [--spark]`."""
    return run_doctor(cfg, spark=args.spark)
