"""With `make assembly` built, the session's Delta comes from that one jar alone."""
import os
from pathlib import Path

import pytest

from realsyn.jobs.core.tables import TableStore
from realsyn.schemas import spec
from tests.conftest import make_config

ASSEMBLY = Path(__file__).resolve().parents[2] / "jvm" / "target" / "realsyn-deps-assembly.jar"

pytestmark = pytest.mark.skipif(not ASSEMBLY.is_file(),
                                reason="jvm/target/realsyn-deps-assembly.jar not built (run `make assembly`)")


def test_session_runs_delta_from_the_assembly_only(spark, tmp_path):
    # The assembly is the only Delta jar; the others are the S3A connector the shared session carries.
    jars = spark.conf.get("spark.jars").split(",")
    assert jars[0] == str(ASSEMBLY), jars
    assert not [j for j in jars[1:] if os.path.basename(j).startswith("delta-")], jars
    jvm = spark._jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    for cls in ("io.delta.tables.DeltaTable", "org.apache.spark.sql.delta.catalog.DeltaCatalog"):
        where = jvm.java.lang.Class.forName(cls, False, loader).getProtectionDomain().getCodeSource().getLocation()
        assert where.getPath() == str(ASSEMBLY), (cls, where.toString())
    # A real Delta round trip through the assembly's catalog and SQL extension.
    store = TableStore(spark, make_config(tmp_path))
    schema = spec("gold.retrievals").schema
    store.write("gold.retrievals", spark.createDataFrame([("a", 1, "s1", 0.5, None)], schema))
    assert store.read("gold.retrievals").first()["sentence_id"] == "s1"
    history = spark.sql(f"DESCRIBE HISTORY {store.identifier('gold.retrievals')}").collect()
    assert [r["version"] for r in history] == [0]
