"""ingest: OBELICS parquet -> bronze.documents (+ bronze.document_rejects).

Every input row ends in exactly one of the two tables; the ledger checks it.
Validation is Spark SQL (RAPIDS-friendly), not Python. Every string passed on is valid
UTF-8 (texts, image URLs, both metadata columns) and URLs are bounded in length; the
characters of a URL are judged per URL by the fetcher's parser (udfs/url_policy.py), whose
refusal is recorded in silver.images, so one odd URL does not cost a document its texts.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType

from realsyn.jobs.input_files import content_hashes, hadoop_sha256
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.stage import Context, InputError, Ledger, Stage, StageParams
from realsyn.schemas import spec
from realsyn.udfs.locations import Location

EXPECTED_TYPES = {"images": ArrayType(StringType()), "texts": ArrayType(StringType()),
                  "metadata": StringType(), "general_metadata": StringType()}


def list_input_files(spark, pattern: str) -> list[str]:
    """Expand a path, folder or glob with Hadoop's FileSystem (works for s3/abfs too)."""
    if not pattern:
        raise InputError("no input: set run.input (or pass --input PATH) to OBELICS parquet files")
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    statuses = fs.globStatus(path) or []
    files: list[str] = []
    for st in statuses:
        if st.isDirectory():
            for child in fs.listStatus(st.getPath()):
                name = child.getPath().getName()
                if child.isFile() and name.endswith(".parquet") and not name.startswith(("_", ".")):
                    files.append(child.getPath().toString())
        else:
            files.append(st.getPath().toString())
    if not files:
        raise InputError(f"no input files match {pattern!r}")
    return sorted(files)


def type_problems(schema) -> list[str]:
    fields = {f.name: f.dataType for f in schema.fields}
    problems = []
    for name, expected in EXPECTED_TYPES.items():
        if name not in fields:
            problems.append(f"missing column {name}")
        elif fields[name] != expected:
            problems.append(f"{name} is {fields[name].simpleString()}, expected {expected.simpleString()}")
    return problems


def reason_expr(max_slots: int, max_chars: int, max_url: int, max_metadata: int):
    """First failing rule for a row, or null when the document is valid. The cheap bounds
    come first: no JSON is parsed nor UTF-8 checked in a metadata column over its bound."""
    return F.expr(f"""
    CASE
      WHEN images IS NULL OR texts IS NULL THEN 'null_lists'
      WHEN size(images) != size(texts) THEN 'unequal_lengths'
      WHEN size(images) > {max_slots} THEN 'too_many_slots'
      WHEN octet_length(metadata) > {max_metadata} OR octet_length(general_metadata) > {max_metadata}
        THEN 'metadata_too_large'
      WHEN exists(texts, t -> t IS NOT NULL AND NOT is_valid_utf8(t))
        OR exists(images, i -> i IS NOT NULL AND NOT is_valid_utf8(i))
        OR NOT is_valid_utf8(coalesce(metadata, '')) OR NOT is_valid_utf8(coalesce(general_metadata, ''))
        THEN 'invalid_utf8'
      WHEN exists(zip_with(images, texts, (i, t) -> i IS NOT NULL AND t IS NOT NULL), x -> x) THEN 'slot_both_set'
      WHEN exists(zip_with(images, texts, (i, t) -> i IS NULL AND t IS NULL), x -> x) THEN 'slot_neither_set'
      WHEN metadata IS NOT NULL AND try_parse_json(metadata) IS NULL THEN 'invalid_metadata_json'
      WHEN general_metadata IS NOT NULL AND try_parse_json(general_metadata) IS NULL THEN 'invalid_general_metadata_json'
      WHEN aggregate(texts, 0L, (acc, t) -> acc + coalesce(length(t), 0)) > {max_chars} THEN 'too_much_text'
      WHEN exists(images, i -> length(i) > {max_url}) THEN 'url_too_long'
      WHEN NOT exists(images, i -> i IS NOT NULL AND i RLIKE '\\\\S')
       AND NOT exists(texts, t -> t IS NOT NULL AND t RLIKE '\\\\S') THEN 'empty_document'
      ELSE NULL
    END""")


def raw_json(df: DataFrame, cols: list[str], limit: int):
    return F.substring(F.to_json(F.struct(*[F.col(c) for c in cols])), 1, limit)


@dataclass(frozen=True)
class IngestParams(StageParams):
    input: Location   # the files are identified by content (external_inputs), not by this glob
    max_slots: int
    max_text_chars: int
    max_url_chars: int
    max_metadata_chars: int
    rejects_sample_chars: int

    @classmethod
    def from_config(cls, cfg) -> "IngestParams":
        return cls(cfg.get("run.input"), cfg.get("ingest.max_slots"), cfg.get("ingest.max_text_chars"),
                   cfg.get("ingest.max_url_chars"), cfg.get("ingest.max_metadata_chars"),
                   cfg.get("ingest.rejects_sample_chars"))


class Ingest(Stage):
    name = "ingest"
    description = "OBELICS parquet -> bronze.documents"
    outputs = ("bronze.documents", "bronze.document_rejects")
    Params = IngestParams
    resources = TaskResources(cpus=1)   # SQL over the documents; no Python per row

    def external_inputs(self, ctx: Context, p: IngestParams) -> dict:
        """The input files by content (jobs/input_files.py): moving or copying them with the
        same bytes is not new input."""
        jvm = ctx.spark._jvm
        stats = []
        for f in list_input_files(ctx.spark, p.input):
            path = jvm.org.apache.hadoop.fs.Path(f)
            st = path.getFileSystem(ctx.spark._jsc.hadoopConfiguration()).getFileStatus(path)
            stats.append((f, st.getLen(), st.getModificationTime()))
        return {"files": content_hashes(stats, ctx.state_uri("input_files.json"), hadoop_sha256(ctx.spark),
                                        say=ctx.say, write=ctx.writes)}

    def run(self, ctx: Context, p: IngestParams) -> list[Ledger]:
        spark = ctx.spark
        files = list_input_files(spark, p.input)
        sample_chars = p.rejects_sample_chars
        good: list[tuple[str, list[str]]] = []
        bad: list[tuple[str, list[str]]] = []
        for f in files:
            try:
                schema = spark.read.parquet(f).schema
            except Exception as err:  # not parquet, unreadable
                msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise InputError(f"cannot read {f} as OBELICS parquet: {msg}") from None
            problems = type_problems(schema)
            (bad if problems else good).append((f, problems))

        rejects: list[DataFrame] = []
        rows_in = 0
        for f, problems in bad:  # every row of a mistyped file is a reject with the reason
            df = spark.read.parquet(f)
            rows_in += df.count()
            rejects.append(df.select(
                F.lit(f).alias("source_file"), F.col("_metadata.row_index").cast("long").alias("row_index"),
                F.lit("wrong_column_types").alias("reason"), F.lit("; ".join(problems)).alias("detail"),
                raw_json(df, df.columns, sample_chars).alias("raw")))

        documents = None
        if good:
            docs = spark.read.parquet(*[f for f, _ in good]).select(
                *EXPECTED_TYPES, F.col("_metadata.file_path").alias("source_file"),
                F.col("_metadata.row_index").cast("long").alias("row_index"))
            rows_in += docs.count()
            checked = docs.withColumn("reason", reason_expr(p.max_slots, p.max_text_chars, p.max_url_chars,
                                                                p.max_metadata_chars))
            checked = checked.withColumn(
                "doc_id", F.sha2(F.to_json(F.struct("images", "texts")), 256))
            # Exact duplicate documents collapse: the first valid occurrence (by file, row) is kept.
            checked = checked.withColumn(
                "reason", F.when(F.col("reason").isNull() & (F.row_number().over(
                    Window.partitionBy("doc_id", F.col("reason").isNull()).orderBy("source_file", "row_index")) > 1),
                    F.lit("duplicate_document")).otherwise(F.col("reason")))
            checked = checked.persist()
            documents = checked.where(F.col("reason").isNull()).select(
                "doc_id", F.get_json_object("general_metadata", "$.url").alias("url"),
                "images", "texts", "metadata", "general_metadata",
                "source_file",
                F.expr("size(filter(images, i -> i IS NOT NULL))").cast("int").alias("n_images"),
                F.expr("size(filter(texts, t -> t IS NOT NULL))").cast("int").alias("n_texts"),
            )
            rejects.append(checked.where(F.col("reason").isNotNull()).select(
                "source_file", "row_index", "reason", F.lit(None).cast("string").alias("detail"),
                raw_json(checked, list(EXPECTED_TYPES), sample_chars).alias("raw")))

        if documents is None:
            documents = spark.createDataFrame([], spec("bronze.documents").schema)
        ctx.write("bronze.documents", documents)
        all_rejects = rejects[0]
        for r in rejects[1:]:
            all_rejects = all_rejects.unionByName(r)
        ctx.write("bronze.document_rejects", all_rejects)
        if good:
            checked.unpersist()

        kept = ctx.read("bronze.documents").count()
        by_reason = {r["reason"]: r["count"] for r in
                     ctx.read("bronze.document_rejects").groupBy("reason").count().collect()}
        return [Ledger("documents", rows_in, kept, by_reason)]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["ingest", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
