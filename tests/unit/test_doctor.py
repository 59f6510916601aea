"""`realsyn doctor`: each check on a made-up machine (its environment, files and probes given
as arguments), and the command on the local and standalone profiles. No Spark session."""
import http.server
import os
import socket
import stat
import threading

import pytest

from realsyn.jobs.checks import doctor
from realsyn.jobs.core.config import load_config
from realsyn.jobs.checks.doctor import Check
from tests.conftest import make_config

PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"


def config(tmp_path, *overrides, profile="local"):
    return load_config(profile, [], [f"run.work_dir={tmp_path / 'work'}", *overrides])


@pytest.fixture
def listening():
    """A port on 127.0.0.1 that accepts connections (a standalone master's stand-in)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def executable(path, text="#!/bin/sh\necho {}\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_line_names_the_setting_to_fix_and_masks_secrets():
    assert Check("spark master", True, "local[*]").line() == "ok    spark master: local[*]"
    line = Check("mlflow", False, "https://bob:hunter2@mlflow.internal: no answer", "mlflow.tracking_uri").line()
    assert line.startswith("FAIL  mlflow: ") and line.endswith("-> fix: mlflow.tracking_uri")
    assert "hunter2" not in line
    assert Check("delta jars", False, "none local", "jvm.jars_dir", required=False).line().startswith("warn  ")


def test_spark_and_delta_versions_against_the_delta_package():
    assert doctor.delta_spark_minor(PACKAGE) == "4.2"
    ok = doctor.check_spark("local", PACKAGE, "4.2.0", "4.2.0")
    assert ok.ok and "pyspark 4.2.0" in ok.detail and "pins 4.2.0" in ok.detail
    wrong = doctor.check_spark("standalone", PACKAGE, "4.1.1", "4.2.0")
    assert not wrong.ok and wrong.required and "jvm.delta_package" in wrong.fix
    assert not doctor.check_spark("local", PACKAGE, None, "4.2.0").ok
    assert doctor.check_spark("databricks", PACKAGE, "4.0.0", None).ok   # the runtime's own
    assert doctor.check_delta_python("local", PACKAGE, "4.4.0").ok
    stale = doctor.check_delta_python("local", PACKAGE, "4.0.0")
    assert not stale.ok and "delta-spark==4.4.0" in stale.fix
    assert doctor.project_pin("pyspark") == "4.2.0"   # requirements.txt of this checkout


def test_java_from_java_home_or_the_path(tmp_path):
    assert doctor.check_java("local", {"JAVA_HOME": str(tmp_path)}).fix.startswith("JAVA_HOME")
    assert not doctor.check_java("local", {}, which=lambda _: None).ok
    java = executable(tmp_path / "jdk" / "bin" / "java")
    assert doctor.check_java("local", {"JAVA_HOME": str(tmp_path / "jdk")}).detail.startswith(java)
    assert doctor.check_java("databricks", {}).ok


def test_delta_jars_are_the_ones_the_session_would_use(tmp_path, monkeypatch):
    monkeypatch.delenv("REALSYN_JARS_DIR", raising=False)   # make exports it; the session reads it first
    jars = tmp_path / "jars"
    jars.mkdir()
    none = doctor.check_delta_jars(config(tmp_path, "jvm.assembly_jar=", f"jvm.jars_dir={jars}"))
    assert not none.ok and not none.required and "Maven" in none.detail and "jvm.jars_dir" in none.fix
    for name in ("delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (jars / name).write_bytes(b"")
    found = doctor.check_delta_jars(config(tmp_path, "jvm.assembly_jar=", f"jvm.jars_dir={jars}"))
    assert found.ok and f"2 jars in {jars}" in found.detail
    (tmp_path / "broken.jar").write_text("not a zip")
    broken = doctor.check_delta_jars(config(tmp_path, f"jvm.assembly_jar={tmp_path / 'broken.jar'}"))
    assert not broken.ok and broken.fix.startswith("jvm.assembly_jar")


def test_the_master_local_standalone_and_yarn(tmp_path, listening):
    assert doctor.check_master("local[2]", "local").ok
    up = doctor.check_master(f"spark://127.0.0.1:{listening}", "standalone")
    assert up.ok and "accepts connections" in up.detail
    down = doctor.check_master(f"spark://127.0.0.1:{closed_port()}", "standalone")
    assert not down.ok and down.fix == "spark.master"
    # HA masters: one that answers is enough.
    assert doctor.check_master(f"spark://127.0.0.1:{closed_port()},127.0.0.1:{listening}", "standalone").ok
    nowhere = doctor.check_master("yarn", "emr", {}, hadoop_conf=str(tmp_path / "none"))
    assert not nowhere.ok and nowhere.fix == "HADOOP_CONF_DIR"
    assert doctor.check_master("yarn", "emr", {"HADOOP_CONF_DIR": str(tmp_path)}).ok
    (tmp_path / "hadoop").mkdir()
    (tmp_path / "hadoop" / "yarn-site.xml").write_text("<configuration/>")
    assert doctor.check_master("yarn", "emr", {}, hadoop_conf=str(tmp_path / "hadoop")).ok
    assert doctor.check_master("", "gpu").ok   # spark-submit's --master


def test_gpus_torch_build_discovery_script_and_rapids_jar(tmp_path):
    assert doctor.check_torch(False, "2.14.0", None, 0).ok   # a CPU run needs no GPU
    cpu_only = doctor.check_torch(True, "2.14.0", None, 0)
    assert not cpu_only.ok and "CUDA" in cpu_only.fix
    cuda = doctor.check_torch(True, "2.14.0", "12.4", 2)
    assert cuda.ok and "2 GPU(s) seen here" in cuda.detail
    key = "spark.executor.resource.gpu.discoveryScript"
    assert doctor.check_discovery_scripts({}) == []
    [missing] = doctor.check_discovery_scripts({key: str(tmp_path / "getGpusResources.sh")})
    assert not missing.ok and missing.fix.startswith(f"spark.conf.{key}")
    (tmp_path / "plain.sh").write_text("#!/bin/sh\n")
    (tmp_path / "plain.sh").chmod(0o644)
    [plain] = doctor.check_discovery_scripts({key: str(tmp_path / "plain.sh")})
    assert not plain.ok and "not executable" in plain.detail
    [good] = doctor.check_discovery_scripts({key: executable(tmp_path / "getGpusResources.sh")})
    assert good.ok
    assert doctor.check_rapids({}) is None
    plugin = {"spark.plugins": doctor.RAPIDS_PLUGIN}
    absent = doctor.check_rapids(plugin, {"SPARK_HOME": str(tmp_path)})
    assert not absent.ok and "spark.jars" in absent.fix
    jar = tmp_path / "rapids-4-spark_2.13-25.10.0.jar"
    jar.write_bytes(b"")
    assert doctor.check_rapids({**plugin, "spark.jars": f"/x/delta.jar,{jar}"}, {}).detail == str(jar)


def test_the_gpu_profile_names_its_discovery_script_and_jar(tmp_path):
    names = {c.name: c for c in doctor.machine_checks(config(tmp_path, profile="gpu"))}
    assert names["gpu discovery"].detail.startswith(
        "spark.executor.resource.gpu.discoveryScript=/opt/realsyn/getGpusResources.sh")
    assert "rapids jar" in names


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_credentials_are_named_by_their_source_never_shown(tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET}
    keys = doctor.check_credentials("local", env, home=str(tmp_path))
    assert keys.ok and "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in keys.detail
    assert SECRET not in keys.line() and "AKIAIOSFODNN7EXAMPLE" not in keys.line()
    half = doctor.check_credentials("local", {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}, home=str(tmp_path))
    assert not half.ok and half.fix == "AWS_SECRET_ACCESS_KEY"
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(f"[realsyn]\naws_access_key_id = x\naws_secret_access_key = {SECRET}\n")
    (tmp_path / ".aws" / "config").write_text("[profile other]\nregion = eu-west-1\n")
    named = doctor.check_credentials("local", {"AWS_PROFILE": "realsyn"}, home=str(tmp_path))
    assert named.ok and "'realsyn'" in named.detail and SECRET not in named.line()
    assert doctor.check_credentials("local", {"AWS_PROFILE": "other"}, home=str(tmp_path)).ok
    typo = doctor.check_credentials("local", {"AWS_PROFILE": "realsin"}, home=str(tmp_path))
    assert not typo.ok and typo.fix == "AWS_PROFILE"
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = doctor.check_credentials("standalone", {}, home=str(empty))
    assert not nothing.ok and not nothing.required and "instance role" in nothing.detail
    assert doctor.check_credentials("emr", {}, home=str(empty)).ok
    web = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"}
    assert "web identity" in doctor.check_credentials("local", web, home=str(empty)).detail


def test_s3_locations_connector_and_placeholder_bucket(tmp_path, monkeypatch):
    monkeypatch.delenv("REALSYN_JARS_DIR", raising=False)
    jars = tmp_path / "jars"
    jars.mkdir()
    cfg = config(tmp_path, "tables.warehouse=s3a://bucket/warehouse", f"jvm.jars_dir={jars}")
    missing = doctor.check_s3a(cfg)
    assert not missing.ok and not missing.required and "hadoop-aws" in missing.detail
    for coordinate in cfg.get("jvm.s3a_packages"):
        _, artifact, version = coordinate.split(":")
        (jars / f"{artifact}-{version}.jar").write_bytes(b"")
    assert doctor.check_s3a(cfg).ok
    assert doctor.check_locations(cfg).detail == "tables.warehouse=s3a://bucket/warehouse"
    emr = config(tmp_path, profile="emr")
    assert doctor.check_s3a(emr).ok and "EMRFS" in doctor.check_s3a(emr).detail
    placeholder = doctor.check_locations(emr)
    assert not placeholder.ok and placeholder.fix == "tables.warehouse"


def test_weights_local_folder_or_by_name_nothing_downloaded(tmp_path):
    weights = tmp_path / "weights"
    (weights / "clip").mkdir(parents=True)
    (weights / "clip" / "teacher.safetensors").write_bytes(b"x")
    only_clip = {c.name: c for c in doctor.check_weights(
        config(tmp_path, f"models.weights_dir={weights}", "models.weights_roles=[clip]"), {})}
    assert only_clip["weights clip"].ok and str(weights / "clip") in only_clip["weights clip"].detail
    assert "tiny, built from config" in only_clip["weights llm"].detail
    every = {c.name: c for c in doctor.check_weights(config(tmp_path, f"models.weights_dir={weights}"), {})}
    assert every["weights clip"].ok
    assert not every["weights llm"].ok and every["weights llm"].fix.startswith("models.weights_dir")
    assert "does not exist" in every["weights captioner"].detail
    base = config(tmp_path, "models.preset=base")
    online = {c.name: c for c in doctor.check_weights(base, {}, cached=lambda repo: False)}
    assert all(c.ok for c in online.values())
    assert online["weights llm"].detail == "Qwen/Qwen2.5-0.5B-Instruct: by name from the hub on first use"
    assert online["weights clip"].detail.startswith("open_clip ViT-B-32 (laion2b_s34b_b79k): by name")
    offline = {c.name: c for c in doctor.check_weights(base, {"HF_HUB_OFFLINE": "1"}, cached=lambda r: r == "gpt2")}
    assert offline["weights ppl_lm"].ok and "local hub cache" in offline["weights ppl_lm"].detail
    assert not offline["weights llm"].ok and offline["weights llm"].required
    assert not offline["weights clip"].ok and not offline["weights clip"].required   # open_clip's cache unread


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_mlflow_sqlite_folder_and_a_server_that_answers(tmp_path):
    local = doctor.check_mlflow(config(tmp_path))
    assert local.ok and local.detail.startswith(f"sqlite:///{tmp_path / 'work' / 'mlflow' / 'mlflow.db'}")
    assert not (tmp_path / "work").exists()   # the check writes nothing
    assert doctor.check_mlflow(config(tmp_path, "mlflow.enabled=false")).detail.startswith("off")
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = doctor.check_mlflow(config(tmp_path, f"mlflow.tracking_uri=http://127.0.0.1:{server.server_port}"))
        assert up.ok and "HTTP 200" in up.detail
    finally:
        server.shutdown()
        server.server_close()
    down = doctor.check_mlflow(config(tmp_path, f"mlflow.tracking_uri=http://127.0.0.1:{closed_port()}"))
    assert not down.ok and down.fix.startswith("mlflow.tracking_uri")
    locked = doctor.check_mlflow(config(tmp_path, "mlflow.tracking_uri=https://mlflow.internal"),
                                 status=lambda url: 401)
    assert not locked.ok and "MLFLOW_TRACKING_TOKEN" in locked.fix
    workspace = config(tmp_path, profile="databricks")
    nowhere = doctor.check_mlflow(workspace, env={}, databrickscfg=str(tmp_path / ".databrickscfg"))
    assert not nowhere.ok and nowhere.fix.startswith("DATABRICKS_HOST")
    token = doctor.check_mlflow(workspace, env={"DATABRICKS_HOST": "https://x", "DATABRICKS_TOKEN": SECRET})
    assert token.ok and "DATABRICKS_HOST, DATABRICKS_TOKEN" in token.detail and SECRET not in token.line()
    assert doctor.check_mlflow(workspace, env={"DATABRICKS_RUNTIME_VERSION": "17.3"}).ok


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_mlflow_in_a_folder_it_cannot_write(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        check = doctor.check_mlflow(config(tmp_path, f"run.work_dir={tmp_path / 'ro' / 'work'}"))
        assert not check.ok and check.fix.startswith("mlflow.tracking_uri")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_the_command_on_the_local_profile(tmp_path, capsys):
    from realsyn.jobs.cli import main
    assert main(["--work-dir", str(tmp_path / "work"), "doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("realsyn doctor: profile=local")
    names = [line.split(":")[0].split(None, 1)[1] for line in out[1:-1]]
    assert names[:5] == ["java", "spark", "delta python", "delta jars", "spark master"]
    assert {"torch", "weights clip", "mlflow"} <= set(names) and "s3 credentials" not in names
    assert out[-1].startswith("every required check passes")
    assert not (tmp_path / "work").exists()


def test_the_command_on_the_standalone_profile(tmp_path, capsys, listening):
    from realsyn.jobs.cli import main
    args = ["--profile", "standalone", "--work-dir", str(tmp_path / "work")]
    assert main([*args, "--set", f"spark.master=spark://127.0.0.1:{closed_port()}", "doctor"]) == 1
    out = capsys.readouterr().out.splitlines()
    [master] = [line for line in out if "spark master:" in line]
    assert master.startswith("FAIL") and master.endswith("-> fix: spark.master")
    assert out[-1] == "1 required check(s) fail: spark master"
    assert main([*args, "doctor", "--set", f"spark.master=spark://127.0.0.1:{listening}"]) == 0
    assert "ok    spark master: spark://127.0.0.1:" in capsys.readouterr().out


def test_a_config_error_stops_before_any_check(tmp_path, capsys):
    from realsyn.jobs.cli import main
    assert main(["--work-dir", str(tmp_path), "doctor", "--set", "models.preset=huge"]) == 2
    assert "models.preset" in capsys.readouterr().err


def test_machine_checks_on_the_test_config_pass(tmp_path):
    failed = [c.line() for c in doctor.machine_checks(make_config(tmp_path)) if c.required and not c.ok]
    assert failed == []


def test_executor_gpus_come_from_the_spark_conf_not_the_profile_name():
    assert doctor.executors_have_gpus({"spark.executor.resource.gpu.amount": "1"})
    assert not doctor.executors_have_gpus({"spark.executor.resource.gpu.amount": "0"})
    assert not doctor.executors_have_gpus({})
    assert not doctor.executors_have_gpus({"spark.executor.resource.gpu.amount": "one"})
