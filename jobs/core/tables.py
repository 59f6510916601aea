"""Delta table IO by registry name: where a table lives, atomic writes, versions."""
from __future__ import annotations

import os
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from realsyn.jobs.core.config import Config
from realsyn.jobs.core.errors import UserError
from realsyn.jobs.core.redact import redact_value
from realsyn.jobs.core.session import session_conf
from realsyn.schemas import check_schema, spec


def property_name(key: str) -> str:
    """The Delta table property that holds the project's `key`: every key the stages write
    and read goes through here, so each is spelled once, without the prefix."""
    return f"realsyn.{key}"


class TableStore:
    """Maps 'layer.table' to a Delta location (a folder, or a metastore name)."""

    def __init__(self, spark: SparkSession, cfg: Config):
        self.spark = spark
        self.mode = cfg.get("tables.mode")
        self.prefix = cfg.get("tables.catalog_prefix")
        warehouse = cfg.get("tables.warehouse") or os.path.join(cfg.get("run.work_dir"), "warehouse")
        if "://" not in warehouse:
            warehouse = os.path.abspath(os.path.expanduser(warehouse))
        self.warehouse = warehouse

    def path(self, name: str) -> str:
        layer, table = name.split(".", 1)
        return f"{self.warehouse}/{layer}/{table}"

    def state_uri(self, name: str) -> str:
        """A file beside the tables (`_state/` under the warehouse; caches such as the input
        files' content hashes)."""
        return f"{self.warehouse}/_state/{name}"

    def identifier(self, name: str) -> str:
        if self.mode == "catalog":
            return f"{self.prefix}{name}"
        return f"delta.`{self.path(name).replace('`', '``')}`"   # a backtick in a path is doubled

    def exists(self, name: str) -> bool:
        from delta.tables import DeltaTable
        if self.mode == "catalog":
            return self.spark.catalog.tableExists(self.identifier(name))
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        if not self.exists(name):
            raise MissingTable(f"table {name} does not exist yet ({self.identifier(name)}); run the stage that writes it first")
        if version is None:
            return self.spark.table(self.identifier(name))
        return self.spark.sql(f"SELECT * FROM {self.identifier(name)} VERSION AS OF {int(version)}")

    def version(self, name: str) -> int | None:
        """The table's latest version. The runner asks it for every input and output of
        every stage; DESCRIBE HISTORY is a Spark job, while the Delta log's snapshot update
        only lists the log from the version it already knows."""
        if not self.exists(name):
            return None
        if self.mode != "catalog":
            latest = delta_log_version(self.spark, self.path(name))
            if latest is not None:
                return latest
        row = self.spark.sql(f"DESCRIBE HISTORY {self.identifier(name)} LIMIT 1").select("version").first()
        return int(row[0])

    def property(self, name: str, key: str) -> str | None:
        """The table property realsyn.<key> (None when the table or the property is missing)."""
        if not self.exists(name):
            return None
        props = self.spark.sql(f"DESCRIBE DETAIL {self.identifier(name)}").select("properties").first()[0]
        return (props or {}).get(property_name(key))

    def set_properties(self, name: str, properties: dict[str, str]) -> None:
        """realsyn.<key> = value for each entry (secrets masked, as in write), one commit."""
        pairs = ", ".join(f"'{property_name(k)}' = '{str(redact_value(k, str(v))).replace(chr(39), '')}'"
                          for k, v in properties.items())
        self.spark.sql(f"ALTER TABLE {self.identifier(name)} SET TBLPROPERTIES ({pairs})")

    def delta_table(self, name: str):
        from delta.tables import DeltaTable
        if self.mode == "catalog":
            return DeltaTable.forName(self.spark, self.identifier(name))
        return DeltaTable.forPath(self.spark, self.path(name))

    def delete_keys(self, name: str, key: str | tuple[str, ...], keys: DataFrame) -> None:
        """Delete the rows whose key columns (null-safe) are in `keys`, in one MERGE commit."""
        cols = (key,) if isinstance(key, str) else tuple(key)
        cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in cols)
        (self.delta_table(name).alias("t").merge(keys.select(*cols).distinct().alias("s"), cond)
         .whenMatchedDelete().execute())

    def merge_replace(self, name: str, df: DataFrame, properties: dict[str, str] | None = None,
                      change_data_feed: bool = False) -> int | None:
        """Make the table equal `df` (one row per key) in one MERGE commit: changed rows are
        updated, new ones inserted, missing ones deleted, unchanged ones left alone, so the
        Change Data Feed shows what really changed. Creates the table on first use; the run
        properties are set after the MERGE (a MERGE sets none)."""
        if not self.exists(name):
            return self.write(name, df, properties, change_data_feed=change_data_feed)
        table = spec(name)
        check_schema(name, df.schema)
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in table.keys)
        changed = " OR ".join(f"NOT (t.`{f.name}` <=> s.`{f.name}`)" for f in table.schema.fields
                              if f.name not in table.keys)
        merge = (self.delta_table(name).alias("t").merge(self._guarded(name, df).alias("s"), on)
                 .whenMatchedUpdateAll(condition=changed or None).whenNotMatchedInsertAll()
                 .whenNotMatchedBySourceDelete())
        self._run_guarded(name, merge.execute)
        if properties:
            self.set_properties(name, properties)
        return self.version(name)

    def upsert(self, name: str, df: DataFrame) -> int | None:
        """Insert new keys and update changed rows, in one MERGE commit; nothing is deleted."""
        if not self.exists(name):
            return self.write(name, df)
        table = spec(name)
        check_schema(name, df.schema)
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in table.keys)
        merge = (self.delta_table(name).alias("t").merge(self._guarded(name, df).alias("s"), on)
                 .whenMatchedUpdateAll().whenNotMatchedInsertAll())
        self._run_guarded(name, merge.execute)
        return self.version(name)

    def delete_where(self, name: str, condition) -> None:
        """Delete the rows matching a Column condition, in one commit."""
        self.delta_table(name).delete(condition)

    def write(self, name: str, df: DataFrame, properties: dict[str, str] | None = None,
              change_data_feed: bool = False) -> int | None:
        """Replace the table atomically (one Delta commit) after checking the schema.

        Column comments and the description come from the registry. A null key fails the
        write job itself, so no such table is ever committed. Returns the new version.
        """
        table = spec(name)
        check_schema(name, df.schema)
        writer = self._guarded(name, df).writeTo(self.identifier(name)).using("delta")
        writer = writer.tableProperty("comment", table.description)
        writer = writer.tableProperty(property_name("keys"), ",".join(table.keys))
        if table.stats_columns is not None:
            writer = writer.tableProperty("delta.dataSkippingStatsColumns", ",".join(table.stats_columns))
        if change_data_feed:
            writer = writer.tableProperty("delta.enableChangeDataFeed", "true")
        for key, value in (properties or {}).items():
            writer = writer.tableProperty(property_name(key), str(redact_value(key, str(value))))
        if table.partition_by:
            writer = writer.partitionedBy(*[F.col(p) for p in table.partition_by])
        with row_groups_of(self.spark, table.row_group_bytes):
            self._run_guarded(name, writer.createOrReplace)
        return self.version(name)

    def append(self, name: str, df: DataFrame) -> int | None:
        """Add rows in one commit (creates the table on first use)."""
        if not self.exists(name):
            return self.write(name, df)
        check_schema(name, df.schema)
        with row_groups_of(self.spark, spec(name).row_group_bytes):
            self._run_guarded(name, self._guarded(name, df).writeTo(self.identifier(name)).append)
        return self.version(name)

    @staticmethod
    def _guarded(name: str, df: DataFrame) -> DataFrame:
        """The registry's column order and comments; key columns raise on null while written
        (checked in the same pass as the write instead of a scan of the new table)."""
        table = spec(name)

        def column(f):
            col = F.col(f.name)
            if f.name in table.keys:
                col = F.when(col.isNull(), F.raise_error(F.lit(f"{NULL_KEY} {name}.{f.name}"))).otherwise(col)
            return col.alias(f.name, metadata=f.metadata)
        return df.select([column(f) for f in table.schema.fields])

    @staticmethod
    def _run_guarded(name: str, action) -> None:
        try:
            action()
        except Exception as err:
            if NULL_KEY in str(err):
                keys = ", ".join(spec(name).keys)
                raise ValueError(f"table {name}: a key column ({keys}) holds nulls; nothing was written") from None
            raise


def delta_log_version(spark: SparkSession, path: str) -> int | None:
    """The latest version from open-source Delta's log (DeltaLog.update, the call its own
    reads make), or None where that class is not on the JVM (a vendor's Delta): the
    caller falls back to DESCRIBE HISTORY."""
    from py4j.protocol import Py4JError
    jvm = spark._jvm
    try:
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
        none = jvm.scala.Option.empty()
        return int(log.update(False, none, none).version())
    except Py4JError:
        return None


NULL_KEY = "realsyn: null key in"
ROW_GROUP_CONF = "parquet.block.size"


@contextmanager
def row_groups_of(spark: SparkSession, size: int | None):
    """Parquet row groups of `size` bytes for the writes inside (session conf reaches the
    writers' Hadoop conf); the previous setting is restored after."""
    if size is None:
        yield
        return
    with session_conf(spark, ROW_GROUP_CONF, str(size)):
        yield


class MissingTable(UserError, RuntimeError):
    """A table a stage reads has not been written yet (the table and the stage to run are named)."""
