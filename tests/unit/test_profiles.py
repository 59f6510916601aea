"""Profiles and deploy files: every profile's Spark settings pass the checker, and the
Databricks bundle and EMR steps run exactly the pipeline's stages, in order, through
entry points that exist. No Spark session: the files are read and checked as data."""
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from realsyn.jobs.cli import _merge_common, build_parser
from realsyn.jobs.core.config import PROFILES, ConfigError, load_config
from realsyn.jobs.pipeline import all_stages, stage_names
from realsyn.jobs.core.session import spark_conf
from realsyn.jobs.core.spark_conf_check import check_spark_conf, errors, is_known_key, warnings

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "deploy" / "databricks" / "databricks.yml"
STEPS = ROOT / "deploy" / "emr" / "steps.json"
BOOTSTRAP = ROOT / "deploy" / "emr" / "bootstrap.sh"
DISCOVERY = ROOT / "deploy" / "gpu" / "getGpusResources.sh"
STAGES = stage_names()


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def _sbt_version(name: str) -> str:
    return re.search(rf'val {name}\s*=\s*"([^"]+)"', (ROOT / "build.sbt").read_text()).group(1)


# ---- profiles ----------------------------------------------------------------------

def test_profiles_list_matches_the_files():
    assert sorted(PROFILES) == sorted(p.stem for p in (ROOT / "conf" / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_spark_conf_is_clean(profile):
    cfg = load_config(profile)
    assert cfg.profile == profile
    own = cfg.get("spark.conf")
    assert check_spark_conf(own) == [], f"{profile}: {check_spark_conf(own)}"
    # What the session builder really sets (Delta extensions, jars, defaults) too.
    full = spark_conf(cfg)
    assert set(own) <= set(full)
    assert check_spark_conf(full) == [], f"{profile}: {check_spark_conf(full)}"
    for key in full:
        assert is_known_key(key), key


def test_gpu_profile_resources_add_up():
    conf = load_config("gpu").get("spark.conf")
    cores = int(conf["spark.executor.cores"])
    task_gpu = float(conf["spark.task.resource.gpu.amount"])
    executor_gpu = int(conf["spark.executor.resource.gpu.amount"])
    assert executor_gpu == 1 and task_gpu <= executor_gpu
    assert cores * task_gpu == executor_gpu          # cores and GPU run out together
    assert int(conf["spark.rapids.python.concurrentPythonWorkers"]) <= cores
    # The profile names our own discovery script (installed there by docs/deploy.md).
    assert Path(conf["spark.executor.resource.gpu.discoveryScript"]).name == DISCOVERY.name


# ---- the checker, on bad input ---------------------------------------------------------

def test_typo_key_is_a_warning_with_a_suggestion():
    problems = check_spark_conf({"spark.excutor.memory": "4g", "spark.sql.shuffle.partitons": "8"})
    assert errors(problems) == []
    text = " | ".join(warnings(problems))
    assert "did you mean 'spark.executor.memory'" in text
    assert "did you mean 'spark.sql.shuffle.partitions'" in text


def test_misspelled_resource_key_is_an_error():
    problems = check_spark_conf({"spark.executor.resource.gpu.ammount": "1"})
    assert len(errors(problems)) == 1 and "spark.executor.resource.gpu.amount" in errors(problems)[0]


GPU_OK = {
    "spark.executor.cores": "4",
    "spark.executor.resource.gpu.amount": "1",
    "spark.executor.resource.gpu.discoveryScript": "/opt/realsyn/getGpusResources.sh",
    "spark.task.resource.gpu.amount": "0.25",
}


def test_reference_gpu_conf_is_clean():
    assert check_spark_conf(GPU_OK) == []


@pytest.mark.parametrize("change, expected", [
    ({"spark.task.resource.gpu.amount": "2"}, "exceeds 'spark.executor.resource.gpu.amount'"),
    ({"spark.task.resource.gpu.amount": "0.75"}, "at most 0.5"),
    ({"spark.task.resource.gpu.amount": "1.5", "spark.executor.resource.gpu.amount": "2"}, "whole numbers"),
    ({"spark.executor.resource.gpu.discoveryScript": None}, "discoveryScript"),
    ({"spark.executor.resource.gpu.amount": None, "spark.executor.resource.gpu.discoveryScript": None},
     "'spark.executor.resource.gpu.amount' is not"),
    ({"spark.task.cpus": "8"}, "no task can run"),
    ({"spark.executor.memory": "4 gigs"}, "not a size"),
    ({"spark.executor.cores": "four"}, "integer"),
])
def test_inconsistent_resources_are_errors(change, expected):
    conf = {**GPU_OK, **{k: v for k, v in change.items() if v is not None}}
    for k, v in change.items():
        if v is None:
            conf.pop(k)
    bad = errors(check_spark_conf(conf))
    assert any(expected in p for p in bad), bad


def test_idle_cores_are_a_warning():
    problems = check_spark_conf({**GPU_OK, "spark.executor.cores": "8"})
    assert errors(problems) == []
    assert any("core slot(s) stay idle" in p and "0.125" in p for p in warnings(problems))


def test_rapids_rules():
    rapids = {**GPU_OK, "spark.plugins": "com.nvidia.spark.SQLPlugin"}
    assert check_spark_conf(rapids) == []
    two_gpus = errors(check_spark_conf({**rapids, "spark.executor.resource.gpu.amount": "2",
                                        "spark.task.resource.gpu.amount": "0.5"}))
    assert any("one GPU per executor" in p for p in two_gpus)
    workers = errors(check_spark_conf({**rapids, "spark.rapids.python.concurrentPythonWorkers": "6"}))
    assert any("concurrentPythonWorkers" in p for p in workers)
    pools = errors(check_spark_conf({**rapids, "spark.rapids.memory.gpu.allocFraction": "0.9",
                                     "spark.rapids.memory.gpu.maxAllocFraction": "0.5"}))
    assert any("maxAllocFraction" in p for p in pools)
    # RAPIDS settings without the plugin do nothing: say so.
    assert warnings(check_spark_conf({"spark.rapids.sql.enabled": "true"}))


def test_load_config_refuses_inconsistent_gpu_amount_and_names_the_source():
    with pytest.raises(ConfigError) as err:
        load_config("gpu", overrides=["spark.conf.spark.task.resource.gpu.amount=2"])
    msg = str(err.value)
    assert msg.startswith("--set spark.conf.spark.task.resource.gpu.amount:") and "exceeds" in msg


def test_load_config_refuses_a_bad_profile_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("spark:\n  conf:\n    spark.rapids.python.concurrentPythonWorkers: '16'\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(mine))}: spark.conf: .*concurrentPythonWorkers"):
        load_config("gpu", files=[str(mine)])


def test_load_config_warns_on_a_typo_and_goes_on(caplog):
    with caplog.at_level(logging.WARNING, logger="realsyn"):
        cfg = load_config("local", overrides=["spark.conf.spark.sql.shufle.partitions=4"])
    assert cfg.get("spark.conf")["spark.sql.shufle.partitions"] == 4
    assert any("did you mean 'spark.sql.shuffle.partitions'" in r.getMessage()
               and "--set spark.conf.spark.sql.shufle.partitions" in r.getMessage() for r in caplog.records)


def test_cli_entry_exits_nonzero_on_a_bad_config(monkeypatch, capsys):
    from realsyn.jobs.cli import entry
    monkeypatch.setattr("sys.argv", ["realsyn", "--profile", "gpu", "--set",
                                     "spark.conf.spark.task.resource.gpu.amount=2", "config"])
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 2
    assert "exceeds" in capsys.readouterr().err


# ---- Databricks bundle ------------------------------------------------------------------

def _bundle():
    return yaml.safe_load(BUNDLE.read_text())


def test_databricks_tasks_are_the_stages_in_order():
    job = _bundle()["resources"]["jobs"]["realsyn_pipeline"]
    tasks = job["tasks"]
    assert [t["task_key"] for t in tasks] == STAGES
    keys = {t["task_key"] for t in tasks}
    clusters = {c["job_cluster_key"] for c in job["job_clusters"]}
    for i, task in enumerate(tasks):
        deps = [d["task_key"] for d in task.get("depends_on", [])]
        assert deps == ([] if i == 0 else [STAGES[i - 1]]), task["task_key"]
        assert set(deps) <= keys
        assert task["job_cluster_key"] in clusters


def test_databricks_tasks_call_the_console_script_with_the_stage():
    setup = (ROOT / "setup.py").read_text()
    target = re.search(r'"realsyn = ([\w.]+):(\w+)"', setup)
    assert target, "setup.py must declare the realsyn console script"
    import importlib
    assert callable(getattr(importlib.import_module(target.group(1)), target.group(2)))
    version = re.search(r'version="([^"]+)"', setup).group(1)
    parser = build_parser(STAGES)
    for task in _bundle()["resources"]["jobs"]["realsyn_pipeline"]["tasks"]:
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == "realsyn" and wheel_task["entry_point"] == "realsyn"
        args = parser.parse_args(wheel_task["parameters"])      # the CLI accepts them as written
        assert args.command == task["task_key"] and args.profile == "databricks"
        wheels = [lib["whl"] for lib in task["libraries"] if "whl" in lib]
        assert wheels == [f"../../dist/realsyn-{version}-py3-none-any.whl"]


def test_databricks_runtime_and_libraries_are_pinned():
    bundle = _bundle()
    runtime = bundle["variables"]["spark_version"]["default"]
    m = re.fullmatch(r"(\d+)\.(\d+)\.x-(cpu-ml-|gpu-ml-)?scala2\.13", runtime)
    assert m and int(m.group(1)) >= 17, runtime            # 17.x: the first runtimes with Spark 4
    pins = _pins(ROOT / "requirements.txt")
    libs = bundle["resources"]["jobs"]["realsyn_pipeline"]["tasks"][0]["libraries"]
    for lib in libs:
        if "pypi" in lib:
            name, version = lib["pypi"]["package"].split("==")
            assert pins[name.lower()] == version, name
    assert not any("pyspark" in str(lib) or "delta" in str(lib) for lib in libs)  # the runtime's own
    assert (ROOT / bundle["artifacts"]["realsyn_wheel"]["path"].replace("../..", ".")).joinpath("setup.py").exists()


# ---- EMR steps --------------------------------------------------------------------------

def _primary(args: list[str]) -> int:
    return next(i for i, a in enumerate(args) if a.endswith(".py"))


def test_emr_steps_run_every_stage_in_order_with_spark_submit():
    steps = json.loads(STEPS.read_text())
    assert len(steps) == len(STAGES)
    parser = build_parser(STAGES)
    bootstrap = BOOTSTRAP.read_text()
    for stage, step in zip(STAGES, steps):
        assert step["Jar"] == "command-runner.jar" and step["ActionOnFailure"] == "CANCEL_AND_WAIT"
        args = step["Args"]
        assert args[0] == "spark-submit"
        i = _primary(args)
        script = Path(args[i])
        assert script.name == f"{stage}.py" and str(script.parent) == "/opt/realsyn/jobs"
        assert 'ln -sfn "$JOBS" "$PREFIX/jobs"' in bootstrap and "PREFIX=/opt/realsyn" in bootstrap
        source = (ROOT / "jobs" / script.name).read_text()   # the module exists and runs its own stage
        cls = next(type(s) for s in all_stages() if s.name == stage)
        assert source.endswith(f'if __name__ == "__main__":\n    sys.exit({cls.__name__}.main())\n')
        assert f"class {cls.__name__}(Stage)" in source
        parsed = parser.parse_args([stage, *args[i + 1:]])
        assert parsed.command == stage and parsed.profile == "emr"
        load_config(*_merge_common(parsed))           # every --set names a key and a valid value
        submit = args[1:i]
        assert submit[submit.index("--deploy-mode") + 1] == "client"
        jars = submit[submit.index("--jars") + 1]
        assert Path(jars).name == "realsyn-deps-assembly.jar" and "realsyn-deps-assembly.jar" in bootstrap
        confs = dict(submit[j + 1].split("=", 1) for j, a in enumerate(submit) if a == "--conf")
        assert confs["spark.pyspark.python"] == "/opt/realsyn/venv/bin/python"
        assert check_spark_conf(confs) == []
    # Client mode keeps MLflow and exports on the primary node between steps; the profile
    # must not contradict it.
    assert "spark.submit.deployMode" not in load_config("emr").get("spark.conf")


def test_emr_bootstrap_is_valid_bash_and_keeps_the_clusters_spark():
    subprocess.run(["bash", "-n", str(BOOTSTRAP)], check=True)
    text = BOOTSTRAP.read_text()
    skip = re.search(r"grep -v -i -E '\^\(([^)]*)\)=='", text).group(1).split("|")
    assert "pyspark" in skip and "py4j" in skip
    assert f"DELTA_PY=\"${{2:-{_sbt_version('deltaVersion')}}}\"" in text   # matches the assembly's Delta


# ---- GPU discovery script --------------------------------------------------------------

def test_discovery_script_is_executable_bash():
    assert os.access(DISCOVERY, os.X_OK)
    subprocess.run(["bash", "-n", str(DISCOVERY)], check=True)


def test_discovery_script_without_a_driver_says_so(tmp_path):
    # A PATH with bash's basics but no nvidia-smi.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "grep", "env"):
        os.symlink(shutil.which(tool), bindir / tool)
    out = subprocess.run([str(bindir / "bash"), str(DISCOVERY)], capture_output=True, text=True,
                         env={"PATH": str(bindir)})
    assert out.returncode == 1 and "nvidia-smi not found" in out.stderr and out.stdout == ""


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs an NVIDIA driver")
def test_discovery_script_lists_the_gpus():
    out = subprocess.run([str(DISCOVERY)], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"})
    found = json.loads(out.stdout)
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    assert found["name"] == "gpu"
    assert len(found["addresses"]) == len([l for l in listed.splitlines() if l.startswith("GPU ")])
    assert all(a.isdigit() for a in found["addresses"])


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs an NVIDIA driver")
@pytest.mark.parametrize("visible, expected", [("0", ["0"]), ("", []), ("0,99", ["0"])])
def test_discovery_script_renumbers_visible_devices(visible, expected):
    # CUDA numbers the visible GPUs 0..n-1 and stops at the first that does not exist.
    out = subprocess.run([str(DISCOVERY)], capture_output=True, text=True, check=True,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": visible})
    assert json.loads(out.stdout) == {"name": "gpu", "addresses": expected}


def test_docs_name_the_pinned_versions():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert f"rapids-4-spark_2.13-{_sbt_version('rapidsVersion')}" in doc
    assert "realsyn-deps-assembly.jar" in doc
    assert _bundle()["variables"]["spark_version"]["default"] in doc
