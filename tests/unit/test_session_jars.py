"""Which Delta jars a session or spark-submit gets: the assembly, the jars dir, or the package."""
import zipfile

import pytest

from realsyn.jobs.core.config import load_config
from realsyn.jobs.core.session import ASSEMBLY_DELTA_ATTR, SparkSetupError, delta_jars, spark_conf, submit_args

DELTA = load_config().get("jvm.delta_package").rsplit(":", 1)[-1]


def write_jar(path, delta_version, wrap=False):
    """A jar whose manifest says which Delta it was built for (as build.sbt writes it)."""
    attr = f"{ASSEMBLY_DELTA_ATTR}: {delta_version}"
    if wrap:  # manifests wrap at 72 bytes with a leading-space continuation
        attr = f"{attr[:len(ASSEMBLY_DELTA_ATTR) + 3]}\r\n {attr[len(ASSEMBLY_DELTA_ATTR) + 3:]}"
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\r\n{attr}\r\n\r\n")
        jar.writestr("io/delta/sql/DeltaSparkSessionExtension.class", b"")
    return path


@pytest.fixture
def jars_dir(tmp_path, monkeypatch):
    d = tmp_path / "jars"
    d.mkdir()
    for name in (f"delta-spark_4.2_2.13-{DELTA}.jar", f"delta-storage-{DELTA}.jar"):
        (d / name).write_bytes(b"")
    monkeypatch.setenv("REALSYN_JARS_DIR", str(d))
    return d


@pytest.mark.parametrize("wrap", [False, True])
def test_built_assembly_is_preferred(tmp_path, jars_dir, wrap):
    jar = write_jar(tmp_path / "deps.jar", DELTA, wrap=wrap)
    cfg = load_config(overrides=[f"jvm.assembly_jar={jar}"])
    assert delta_jars(cfg) == [str(jar)]
    args = submit_args(cfg)
    assert args[:2] == ["--jars", str(jar)] and "--packages" not in args


def test_stale_assembly_falls_back_to_jars_dir(tmp_path, jars_dir):
    jar = write_jar(tmp_path / "deps.jar", "0.0.1")
    cfg = load_config(overrides=[f"jvm.assembly_jar={jar}"])
    with pytest.warns(UserWarning, match="built for Delta 0.0.1"):
        jars = delta_jars(cfg)
    assert sorted(jars) == sorted(str(p) for p in jars_dir.iterdir())


def test_missing_or_disabled_assembly_uses_jars_dir(tmp_path, jars_dir):
    for value in (str(tmp_path / "not-built.jar"), ""):
        cfg = load_config(overrides=[f"jvm.assembly_jar={value}"])
        assert len(delta_jars(cfg)) == 2


def test_nothing_local_means_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("REALSYN_JARS_DIR", str(tmp_path / "empty"))
    cfg = load_config(overrides=[f"jvm.assembly_jar={tmp_path / 'not-built.jar'}"])
    conf = spark_conf(cfg)
    assert "spark.jars" not in conf and conf["spark.jars.packages"] == cfg.get("jvm.delta_package")


def test_relative_assembly_path_is_the_checkout(tmp_path, jars_dir, monkeypatch):
    from realsyn.jobs.core.session import PROJECT_ROOT
    monkeypatch.chdir(tmp_path)  # not the working directory: the checkout holding build.sbt
    cfg = load_config(overrides=["jvm.assembly_jar=build.sbt"])
    with pytest.raises(SparkSetupError, match=str(PROJECT_ROOT / "build.sbt")):
        delta_jars(cfg)


def test_unreadable_assembly_is_a_clear_error(tmp_path, jars_dir):
    bad = tmp_path / "deps.jar"
    bad.write_text("not a jar")
    cfg = load_config(overrides=[f"jvm.assembly_jar={bad}"])
    with pytest.raises(SparkSetupError, match="not a readable jar"):
        delta_jars(cfg)


def test_databricks_gets_no_jars(tmp_path):
    jar = write_jar(tmp_path / "deps.jar", DELTA)
    conf = spark_conf(load_config("databricks", overrides=[f"jvm.assembly_jar={jar}"]))
    assert "spark.jars" not in conf and "spark.jars.packages" not in conf
