"""ingest: OBELICS parquet -> bronze.documents (+ bronze.document_rejects).

Every input row ends in exactly one of the two tables; the ledger checks it.
Validation is Spark SQL (RAPIDS-friendly), not Python. Every string passed on is valid
UTF-8 (texts, image URLs, both metadata columns) and URLs are bounded in length; the
characters of a URL are judged per URL by the fetcher's parser (udfs/url_policy.py), whose
refusal is recorded in silver.images, so one odd URL does not cost a document its texts.

An input file Spark cannot read whole (a footer or a data page that does not decode, a
truncated file, not Parquet) is quarantined: none of its rows are ingested (a partial file
would ingest rows before the bad page and hide the rest), and it is recorded as one row of
bronze.document_rejects (reason corrupt_input_file, row_index -1 for the whole file,
the error in detail).
Its rows cannot be counted, so it enters the documents ledger not at all and the
input_files ledger as a rejected file: files in = files ingested + files quarantined.
When no input file can be read, the run stops with a clear error instead.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType

from realsyn.jobs.core.input_files import content_hashes, hadoop_sha256, read_cache
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, InputError, Ledger, Stage, StageParams
from realsyn.udfs.declared import setting
from realsyn.schemas import spec
from realsyn.udfs import object_files
from realsyn.udfs.locations import Location

EXPECTED_TYPES = {"images": ArrayType(StringType()), "texts": ArrayType(StringType()),
                  "metadata": StringType(), "general_metadata": StringType()}
QUARANTINED = "corrupt_input_file"   # the reject reason of an input file that cannot be read whole
WHOLE_FILE = -1                      # its row_index in bronze.document_rejects (a key: never null)
NAMED = 10                           # files named in a warning line; the rest are counted


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


def file_stats(spark, paths: list[str]) -> list[tuple[str, int, int]]:
    """(uri, size, modified time) of each file."""
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    out = []
    for f in paths:
        path = jvm.org.apache.hadoop.fs.Path(f)
        st = path.getFileSystem(conf).getFileStatus(path)
        out.append((f, int(st.getLen()), int(st.getModificationTime())))
    return out


def read_error(err: Exception) -> str:
    """Why Spark could not read a file, in one line: the innermost JVM causes (the decoder's
    or the footer reader's message), not the task's stack."""
    java = getattr(err, "java_exception", None) or getattr(err, "_origin", None)
    messages = []
    while java is not None:
        messages.append(str(java.getMessage() or java.getClass().getSimpleName()))
        java = java.getCause()
    lines = [m.strip().splitlines()[0] for m in messages[1:] or messages or [str(err)] if m.strip()]
    lines = [m for i, m in enumerate(lines) if i == 0 or not lines[i - 1].endswith(m)][-2:]   # no echo
    return (": ".join(lines) or type(err).__name__)[:300]


def unreadable(spark, paths: list[str], part: str) -> dict[str, str]:
    """The files among `paths` that Spark cannot read through, each with the error (one job a
    file, every column decoded by the no-op sink): only for the few files a cheaper check
    has singled out, or after a read of all of them failed."""
    out = {}
    for f in paths:
        try:
            spark.read.parquet(f).write.format("noop").mode("overwrite").save()
        except Exception as err:  # any read failure quarantines the file
            out[f] = f"{part}: {read_error(err)}"
    return out


def quarantine_warning(files: dict[str, str], what: str) -> str:
    named = "; ".join(f"{f} ({why})" for f, why in sorted(files.items())[:NAMED])
    more = f"; and {len(files) - NAMED} more" if len(files) > NAMED else ""
    return (f"[ingest] warning: {len(files)} input file(s) {what}, none of their rows ingested "
            f"(bronze.document_rejects, reason {QUARANTINED}): {named}{more}")


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


def checked_documents(spark, paths: list[str], p: "IngestParams") -> DataFrame:
    """The documents of `paths` with their reject reason, persisted. ignoreCorruptFiles lets
    one job read through a data page that does not decode: the rest of that file is
    skipped, which read_documents finds by counting, and then quarantines the file whole."""
    docs = spark.read.option("ignoreCorruptFiles", "true").parquet(*paths).select(
        *EXPECTED_TYPES, F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.row_index").cast("long").alias("row_index"))
    checked = docs.withColumn("reason", reason_expr(p.max_slots, p.max_text_chars, p.max_url_chars,
                                                    p.max_metadata_chars))
    checked = checked.withColumn("doc_id", F.sha2(F.to_json(F.struct("images", "texts")), 256))
    # Exact duplicate documents collapse: the first valid occurrence (by file, row) is kept.
    checked = checked.withColumn(
        "reason", F.when(F.col("reason").isNull() & (F.row_number().over(
            Window.partitionBy("doc_id", F.col("reason").isNull()).orderBy("source_file", "row_index")) > 1),
            F.lit("duplicate_document")).otherwise(F.col("reason")))
    return checked.persist()


def rows_per_file(spark, df: DataFrame, column, paths: list[str]) -> dict[str, int]:
    """Rows of `df` per input file, keyed by the path as listed (`column` holds Spark's
    URL-encoded form of it)."""
    listed = {str(spark._jvm.org.apache.hadoop.fs.Path(f).toUri().toString()): f for f in paths}
    return {listed.get(r[0], r[0]): int(r[1]) for r in df.groupBy(column).count().collect()}


def read_documents(spark, paths: list[str], p: "IngestParams") -> tuple[DataFrame | None, int, dict[str, str]]:
    """(the checked documents, persisted, or None; their rows, counted from the decoded rows;
    {file: why} for the files that cannot be read whole). A file whose decoded rows fall
    short of the rows its footer declares lost a data page: it is dropped whole and the
    documents are read again without it, so none of its rows decides a duplicate either."""
    checked = checked_documents(spark, paths, p)
    try:   # decoded from the cache, which holds every column (all pages decoded); declared by the footers
        decoded = rows_per_file(spark, checked, "source_file", paths)
        declared = rows_per_file(spark, spark.read.parquet(*paths), F.col("_metadata.file_path"), paths)
    except Exception:  # a failure ignoreCorruptFiles does not cover: find the file(s)
        checked.unpersist()
        broken = unreadable(spark, paths, "footer or data page")
        if not broken:
            raise
        rest = [f for f in paths if f not in broken]
        if not rest:
            return None, 0, broken
        checked, rows, more = read_documents(spark, rest, p)
        return checked, rows, {**broken, **more}
    short = sorted(f for f, n in declared.items() if decoded.get(f, 0) != n)
    if not short:
        return checked, sum(decoded.values()), {}
    checked.unpersist()
    broken = unreadable(spark, short, "data page")
    for f in short:
        broken.setdefault(f, f"data page: {decoded.get(f, 0)} of the footer's {declared[f]} rows decoded")
    rest = [f for f in paths if f not in broken]
    rows = sum(n for f, n in decoded.items() if f not in broken)
    return (checked_documents(spark, rest, p) if rest else None), rows, broken


@dataclass(frozen=True, kw_only=True)
class IngestParams(StageParams):
    SECTION = "ingest"
    input: Location = setting("run.input")   # the files are identified by content (external_inputs), not by this glob
    max_slots: int
    max_text_chars: int
    max_url_chars: int
    max_metadata_chars: int
    rejects_sample_chars: int


class Ingest(Stage):
    name = "ingest"
    description = "OBELICS parquet -> bronze.documents"
    outputs = ("bronze.documents", "bronze.document_rejects")
    Params = IngestParams
    resources = TaskResources(cpus=1)   # SQL over the documents; no Python per row

    _reported: frozenset[str] = frozenset()   # quarantined files external_inputs already named

    def external_inputs(self, ctx: Context, p: IngestParams) -> dict:
        """The input files by content (jobs/core/input_files.py): moving or copying them with the
        same bytes is not new input. Files an earlier run quarantined that are still in the
        input with the same size and time are named here, so a skipped run names them too."""
        stats = file_stats(ctx.spark, list_input_files(ctx.spark, p.input))
        known = read_cache(ctx.state_uri("quarantine.json"))
        still = {uri: str(known[uri][2]) for uri, size, modified in stats
                 if isinstance(known.get(uri), list) and len(known[uri]) == 3 and known[uri][:2] == [size, modified]}
        if still:
            ctx.say(quarantine_warning(still, "quarantined by an earlier run are still in the input unchanged")
                    + " (replace them; --force reads them again)")
        self._reported = frozenset(still)
        return {"files": content_hashes(stats, ctx.state_uri("input_files.json"), hadoop_sha256(ctx.spark),
                                        say=ctx.say, write=ctx.writes)}

    def run(self, ctx: Context, p: IngestParams) -> list[Ledger]:
        spark = ctx.spark
        files = list_input_files(spark, p.input)
        sample_chars = p.rejects_sample_chars
        quarantined: dict[str, str] = {}   # file -> why it cannot be read whole
        good: list[str] = []
        mistyped: list[tuple[str, list[str]]] = []
        for f in files:
            try:
                schema = spark.read.parquet(f).schema
            except Exception as err:  # not parquet, truncated, unreadable footer
                quarantined[f] = f"footer: {read_error(err)}"
                continue
            problems = type_problems(schema)
            if problems:
                mistyped.append((f, problems))
            else:
                good.append(f)
        # A mistyped file's rows are all rejected with their raw JSON: it must read through too.
        quarantined.update(unreadable(spark, [f for f, _ in mistyped], "data page"))
        mistyped = [(f, problems) for f, problems in mistyped if f not in quarantined]
        checked, rows_in, broken = read_documents(spark, good, p) if good else (None, 0, {})
        quarantined.update(broken)
        if len(quarantined) == len(files):
            first = sorted(quarantined)[0]
            others = f" (nor can the other {len(files) - 1} input files)" if len(files) > 1 else ""
            raise InputError(f"cannot read {first} as OBELICS parquet: {quarantined[first]}{others}")

        rejects: list[DataFrame] = []
        for f, problems in mistyped:  # every row of a mistyped file is a reject with the reason
            df = spark.read.parquet(f)
            rows_in += df.count()
            rejects.append(df.select(
                F.lit(f).alias("source_file"), F.col("_metadata.row_index").cast("long").alias("row_index"),
                F.lit("wrong_column_types").alias("reason"), F.lit("; ".join(problems)).alias("detail"),
                raw_json(df, df.columns, sample_chars).alias("raw")))
        if quarantined:   # one row per file, row_index -1 (the whole file): its rows cannot be counted
            rejects.append(spark.createDataFrame(
                [(f, WHOLE_FILE, QUARANTINED, why, None) for f, why in sorted(quarantined.items())],
                spec("bronze.document_rejects").schema))
            new = {f: why for f, why in quarantined.items() if f not in self._reported}
            if new:
                ctx.say(quarantine_warning(new, "cannot be read whole and are quarantined"))

        documents = None
        if checked is not None:
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
        if checked is not None:
            checked.unpersist()
        if ctx.writes:
            write_state(ctx, "quarantine.json", {uri: [size, modified, quarantined[uri]] for uri, size, modified
                                                 in file_stats(spark, sorted(quarantined))})

        kept = ctx.read("bronze.documents").count()
        by_reason = {r["reason"]: r["count"] for r in
                     ctx.read("bronze.document_rejects").groupBy("reason").count().collect()}
        files_rejected = {QUARANTINED: n} if (n := by_reason.pop(QUARANTINED, 0)) else {}
        return [Ledger("documents", rows_in, kept, by_reason),
                Ledger("input_files", len(files), len(files) - len(quarantined), files_rejected)]


def write_state(ctx: Context, name: str, data: dict) -> None:
    """A small JSON file of the stage's own: the quarantine, for the warning of a later run
    (best effort, like the hash cache: a store it cannot be written to costs that warning)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(data, fh, sort_keys=True)
    try:
        object_files.upload(fh.name, ctx.state_uri(name))
    except (OSError, ValueError) as err:
        ctx.say(f"[ingest] {name} not written ({type(err).__name__}): a skipped run will not name "
                "the quarantined input files")
    finally:
        os.unlink(fh.name)


if __name__ == "__main__":
    sys.exit(Ingest.main())
