"""build.sbt is the single source of the JVM versions: the Python pins, the config's
Delta package and the Makefile must agree with it; the assembly it builds must hold
Delta and leave Spark and Scala to the cluster."""
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from realsyn.jobs.core.config import load_config
from realsyn.jobs.core.session import ASSEMBLY_DELTA_ATTR, jar_manifest

ROOT = Path(__file__).resolve().parents[2]
ASSEMBLY = ROOT / "jvm" / "target" / "realsyn-deps-assembly.jar"


def sbt_vals(text: str) -> dict[str, str]:
    # The same `val name = "x"` lines the Makefile's sed reads.
    return dict(re.findall(r'^val (\w+Version) *= *"(.*)"', text, re.M))


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            found[m.group(1).lower().replace("_", "-")] = m.group(2)
    return found


def test_build_sbt_pins_every_jvm_version():
    vals = sbt_vals((ROOT / "build.sbt").read_text())
    assert set(vals) >= {"sparkVersion", "deltaVersion", "rapidsVersion"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in vals.values()), vals


@pytest.mark.parametrize("req", ["requirements.txt", "requirements.lock"])
def test_python_pins_match_build_sbt(req):
    vals = sbt_vals((ROOT / "build.sbt").read_text())
    py = pins(ROOT / req)
    assert py["pyspark"] == vals["sparkVersion"], f"{req}: pyspark {py['pyspark']} vs build.sbt {vals['sparkVersion']}"
    assert py["delta-spark"] == vals["deltaVersion"], \
        f"{req}: delta-spark {py['delta-spark']} vs build.sbt {vals['deltaVersion']}"


def test_config_delta_package_matches_build_sbt():
    vals = sbt_vals((ROOT / "build.sbt").read_text())
    spark_minor = ".".join(vals["sparkVersion"].split(".")[:2])
    assert load_config().get("jvm.delta_package") == f"io.delta:delta-spark_{spark_minor}_2.13:{vals['deltaVersion']}"


def make_vars(workdir: Path, tmp_cache: Path) -> dict[str, str]:
    """The Makefile's variables as make expands them (dry run: nothing is executed)."""
    run = subprocess.run(["make", "-pn", f"CACHE={tmp_cache}", "assembly"], cwd=workdir,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return dict(re.findall(r"^(\w+) := (.*)$", run.stdout, re.M))


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_reads_versions_from_build_sbt(tmp_path):
    # A copy with other versions in build.sbt: the Makefile must follow it, not its own copy.
    work = tmp_path / "repo"
    (work / "project").mkdir(parents=True)
    for name in ("Makefile", "requirements.lock", "project/plugins.sbt", "project/repositories"):
        shutil.copy(ROOT / name, work / name)
    text = (ROOT / "build.sbt").read_text()
    text = re.sub(r'^val sparkVersion *= *".*"', 'val sparkVersion = "9.8.7"', text, flags=re.M)
    text = re.sub(r'^val deltaVersion *= *".*"', 'val deltaVersion = "6.5.4"', text, flags=re.M)
    (work / "build.sbt").write_text(text)
    (work / "project" / "build.properties").write_text("sbt.version=1.2.3\n")
    got = make_vars(work, tmp_path / "cache")
    assert got["DELTA_VERSION"] == "6.5.4"
    assert got["SPARK_MINOR"] == "9.8"
    assert got["SBT_VERSION"] == "1.2.3"
    assert got["SBT_LAUNCHER"].endswith("/sbt-launch-1.2.3.jar")
    assert got["SBT_LAUNCHER"].startswith(str(tmp_path / "cache")), "the launcher is cached outside the repo"
    assert "delta-spark_9.8_2.13" in got["DELTA_ARTIFACTS"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_versions_in_this_checkout(tmp_path):
    vals = sbt_vals((ROOT / "build.sbt").read_text())
    got = make_vars(ROOT, tmp_path / "cache")
    assert got["DELTA_VERSION"] == vals["deltaVersion"]
    assert vals["sparkVersion"].startswith(got["SPARK_MINOR"] + ".")
    props = (ROOT / "project" / "build.properties").read_text()
    assert f"sbt.version={got['SBT_VERSION']}" in props
    assert got["ASSEMBLY_JAR"] == str(ASSEMBLY.relative_to(ROOT))
    assert load_config().get("jvm.assembly_jar") == got["ASSEMBLY_JAR"], "session.py looks where make builds"
    assert got["S3A_ARTIFACTS"].split() == load_config().get("jvm.s3a_packages"), "make s3-jars fetches what session.py adds"


needs_assembly = pytest.mark.skipif(not ASSEMBLY.is_file(),
                                    reason=f"{ASSEMBLY.relative_to(ROOT)} not built (run `make assembly`)")


@needs_assembly
def test_assembly_holds_delta_not_spark_or_scala():
    vals = sbt_vals((ROOT / "build.sbt").read_text())
    with zipfile.ZipFile(ASSEMBLY) as jar:
        names = set(jar.namelist())
        services = jar.read("META-INF/services/org.apache.spark.sql.sources.DataSourceRegister").decode()
    assert "io/delta/sql/DeltaSparkSessionExtension.class" in names
    assert "org/apache/spark/sql/delta/catalog/DeltaCatalog.class" in names
    assert "io/delta/storage/LogStore.class" in names  # delta-storage
    assert "org.apache.spark.sql.delta.sources.DeltaDataSource" in services.split()
    # Spark, Scala and what Spark already ships (Hadoop, Parquet) stay the cluster's.
    assert "org/apache/spark/sql/SparkSession.class" not in names
    assert "scala/Predef.class" not in names
    leaked = sorted(n for n in names if n.startswith(("org/apache/hadoop/", "org/apache/parquet/", "com/fasterxml/jackson/databind/"))
                    and n.endswith(".class"))
    assert not leaked, f"Spark's own dependencies in the assembly: {leaked[:5]} ({len(leaked)} classes)"
    assert jar_manifest(ASSEMBLY)[ASSEMBLY_DELTA_ATTR] == vals["deltaVersion"]


def test_s3a_connector_matches_build_sbt_and_sparks_own_hadoop():
    vals = sbt_vals((ROOT / "build.sbt").read_text())
    assert load_config().get("jvm.s3a_packages") == [
        f"org.apache.hadoop:hadoop-aws:{vals['hadoopAwsVersion']}",
        f"software.amazon.awssdk:bundle:{vals['awsSdkVersion']}",
        f"software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:{vals['analyticsAcceleratorVersion']}"]
    # hadoop-aws must be built for the Hadoop inside pyspark, or S3A fails at class loading.
    import pyspark
    jars = Path(pyspark.__file__).parent / "jars"
    assert (jars / f"hadoop-client-api-{vals['hadoopAwsVersion']}.jar").is_file(), sorted(
        p.name for p in jars.glob("hadoop-client-api-*.jar"))


def test_the_cat_parser_is_an_opt_in_extra_pinned_by_hash():
    """The CAT filter's spaCy pipeline (an unofficial mirror) is never a default dependency;
    `make cat` installs it from requirements-cat.txt, every line pinned by sha256, at the
    version setup.py's `cat` extra names, for the spaCy the lock pins."""
    lines = [l for l in (ROOT / "requirements-cat.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert lines and all(re.search(r"==\S+ --hash=sha256:[0-9a-f]{64}$", l) for l in lines), lines
    cat = pins(ROOT / "requirements-cat.txt")
    assert not set(cat) & (set(pins(ROOT / "requirements.lock")) | set(pins(ROOT / "requirements.txt")))
    extra = re.search(r'extras_require=\{"cat": \[(.*?)\]\}', (ROOT / "setup.py").read_text())[1]
    assert {n.lower(): v for n, v in re.findall(r'"([\w.-]+)==([\w.]+)"', extra)} == cat
    spacy = pins(ROOT / "requirements.lock")["spacy"]
    assert all(v.split(".")[:2] == spacy.split(".")[:2] for v in cat.values()), (cat, spacy)
