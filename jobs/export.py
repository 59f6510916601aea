"""export: gold.realsyn (Delta, CDF on) + release Parquet per subset + WebDataset shards + card.

Release texts follow the public release: realistic texts lowercased and word-tokenized,
syn_text lowercased; files `realsyn_cap<t>/train-NNNNN.parquet`, one folder per cap.

Incremental: every output is a set of stable shards (jobs/lib/export_shards.py), so a run after
an increment writes only the shards whose rows changed and new shards for new rows;
`manifest.json` names the live files. All or nothing: new files are staged under
`<out>/.staging/` (a hidden name no `realsyn_cap*` glob picks up), then swapped in while
`<out>/_INCOMPLETE` says so; `_SUCCESS` (run id and counts) is written last. A kill or a
full disk before the swap leaves the previous export whole; one during the swap leaves
`_INCOMPLETE`, and the next run finishes that swap before its own.
"""
from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# INCOMPLETE, MANIFEST, SUCCESS and managed are the export folder's names, also read from here.
from realsyn.jobs.lib.export_shards import INCOMPLETE, MANIFEST, STAGING, SUCCESS, managed  # noqa: F401
from realsyn.jobs.lib.export_shards import ShardedOutput, commit, export_outputs
from realsyn.jobs.lib.image_bytes import kept_image_bytes
from realsyn.jobs.core import module_graph
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams
from realsyn.udfs.declared import setting
from realsyn.jobs.lib.torch_data import mds_output
from realsyn.jobs.lib.webdataset_export import ROWS_PER_SHARD, webdataset_output
from realsyn.schemas import REGISTRY
from realsyn.udfs import dataset_card as card
from realsyn.udfs import object_files
from realsyn.udfs.locations import Location
from realsyn.udfs.shard_files import parquet_sink

RELEASE_COLUMNS = ["raw_image_url", "text1", "text2", "text3", "syn_text"]


def word_tokenize(col):
    """Lowercase and split punctuation from words (the release's tokenized form), in SQL."""
    spaced = F.regexp_replace(F.lower(col), r"([.,!?;:()\"\[\]])", " $1 ")
    return F.trim(F.regexp_replace(spaced, r"\s+", " "))


def release_rows(subset: DataFrame) -> DataFrame:
    """image_id and the release columns of a subset's rows, in the release's text form."""
    return subset.select(
        "image_id", "raw_image_url", word_tokenize("text1").alias("text1"), word_tokenize("text2").alias("text2"),
        word_tokenize("text3").alias("text3"), F.lower("syn_text").alias("syn_text"))


def release_output(subset: DataFrame, cap: int, shard_bytes: int) -> ShardedOutput:
    """The release Parquet of one cap: `realsyn_cap<cap>/train-NNNNN.parquet`, rows by URL,
    shards of about `shard_bytes` of text."""
    return ShardedOutput(
        name=f"realsyn_cap{cap}", ledger=f"release_cap{cap}", rows=release_rows(subset), content=tuple(RELEASE_COLUMNS),
        order=("raw_image_url",), sink=parquet_sink(tuple(RELEASE_COLUMNS)), settings={"shard_bytes": int(shard_bytes)},
        code=(word_tokenize, release_rows), shard_bytes=int(shard_bytes),
        row_bytes=sum(F.coalesce(F.length(c), F.lit(0)) for c in RELEASE_COLUMNS))


@dataclass
class StagedExport:
    manifest: dict
    counts: dict[int, int]                 # cap -> rows of its subset
    writers: list[Ledger]
    files: list[str] = field(default_factory=list)   # the card's lines on the files


def stage_exports(spark, gold: DataFrame, images: DataFrame, p: "ExportParams", final_dir: str, run_id: str,
                  full_refresh: bool = False, profile=None, say=print,
                  wds_rows_per_shard: int = ROWS_PER_SHARD) -> StagedExport:
    """Stage the release Parquet of every cap, the WebDataset tars and the MDS groups that
    changed since the last export (all of them the first time) under `<final_dir>/.staging`;
    the card and `commit` (jobs/lib/export_shards.py) follow."""
    outputs = [release_output(gold.where(F.col("min_cap") <= cap), cap, p.shard_bytes) for cap in p.caps]
    files = ["Release Parquet: `realsyn_cap<t>/train-NNNNN.parquet`, columns " + ", ".join(RELEASE_COLUMNS)
             + " (the live files and their sha256: `manifest.json`)."]
    if p.webdataset:
        outputs.append(webdataset_output(gold.where(F.col("min_cap") <= max(p.caps)), images, p.resize_to,
                                         wds_rows_per_shard, profile))
        files.append("WebDataset: `webdataset/*.tar` (`KEY.jpg`, `KEY.txt` = text1, `KEY.json`).")
    if p.mds:
        outputs.append(mds_output(gold, p.mds_shard_bytes))
        files.append("PyTorch: `mds/`, Mosaic Streaming MDS of all gold.realsyn rows "
                     "(`realsyn.jobs.lib.torch_data.gold_dataset`; min_cap -1 = in no subset).")
    manifest, writers = export_outputs(spark, outputs, final_dir, run_id, full_refresh, say)
    counts = {cap: led.rows_in for cap, led in zip(p.caps, writers)}
    return StagedExport(manifest, counts, writers, files)


def realsyn_rows(ctx: Context) -> DataFrame:
    sentences = ctx.read("silver.sentences").select("sentence_id", "text")
    hits = ctx.read("gold.retrievals").where("rank BETWEEN 1 AND 3").join(sentences, "sentence_id")
    texts = hits.groupBy("image_id").agg(
        *[F.max(F.when(F.col("rank") == r, F.col("text"))).alias(f"text{r}") for r in (1, 2, 3)],
        F.max(F.when(F.col("rank") == 1, F.col("score"))).alias("score1"))
    clusters = ctx.read("gold.image_clusters").where("status = 'kept'").select("image_id", "sim", "cluster_id", "min_cap")
    syn = ctx.read("gold.synthetic").where("status = 'kept'").select("image_id", "syn_text")
    urls = (ctx.read("silver.images").where("status = 'kept'").groupBy("image_id")
            .agg(F.min("url").alias("raw_image_url")))
    return (clusters.join(texts, "image_id").join(syn, "image_id").join(urls, "image_id")
            .select("image_id", "raw_image_url", "text1", "text2", "text3", "syn_text",
                    F.col("score1").cast("float"), F.col("sim").cast("float"), "cluster_id", "min_cap"))


# The card's figures against a `realsyn sample --world` truth (export.world): test-world code,
# loaded by name when a world is set, its behaviour folded into the fingerprint.
TRUTH_REPORT = "realsyn.jobs.world.truth_report"


@dataclass(frozen=True, kw_only=True)
class ExportParams(StageParams):
    SECTION = "export"
    # The lakehouse itself, whose tables are the inputs: moving it (export folder inside)
    # reruns nothing. An export.dir of its own stays decisive: a new one is written afresh.
    work_dir: Location = setting("run.work_dir")
    export_dir: str = setting("export.dir")   # "" = <work_dir>/export; may be an object store URI
    # The subsets balance cut, read the same way (export names them by cap).
    caps: tuple[int, ...] = setting("balance.caps")
    sim_min: float = setting("balance.sim_min")
    sim_max: float = setting("balance.sim_max")
    seed: int = setting("run.seed")
    shard_bytes: int
    resize_to: int
    webdataset: bool
    mds: bool
    mds_shard_bytes: int
    card_samples: int
    card_sim_bins: int
    world: str                # "" = no ground truth; a `realsyn sample --world` folder adds its figures to the card


def export_ledger(clusters: DataFrame, gold: DataFrame) -> Ledger:
    """In: the balanced pairs (kept rows of gold.image_clusters). Kept: the gold rows written.
    Rejected: balanced pairs with no gold row (a text, the synthetic text or the URL missing),
    found by an anti join, not as the difference."""
    pairs = clusters.where("status = 'kept'").select("image_id")
    missing = pairs.join(gold.select("image_id"), "image_id", "left_anti").count()
    return Ledger("export_pairs", pairs.count(), gold.count(), {"incomplete_pair": missing} if missing else {})


# The card counts the rows of every pipeline table; gold.realsyn is read from these five.
FUNNEL_TABLES = [t for t in REGISTRY if not t.startswith("meta.")]
GOLD_INPUTS = ("gold.retrievals", "gold.synthetic", "gold.image_clusters", "silver.sentences", "silver.images",
               "silver.image_fetches")


class Export(Stage):
    name = "export"
    description = "gold.realsyn, release Parquet per subset, WebDataset shards, dataset card"
    inputs = GOLD_INPUTS + tuple(t for t in FUNNEL_TABLES if t not in GOLD_INPUTS and t != "gold.realsyn")
    reads_run_records = True             # the card's funnel: every stage's latest ledger
    outputs = ("gold.realsyn",)
    Params = ExportParams
    resources = TaskResources(cpus=1)   # JPEG re-encoding per shard task

    @staticmethod
    def out_dir(p: ExportParams) -> str:
        folder = p.export_dir or os.path.join(p.work_dir, "export")
        return os.path.abspath(folder) if object_files.is_local(folder) else folder.rstrip("/")

    def external_inputs(self, ctx: Context, p: ExportParams) -> dict:
        """With a world set, the card's truth figures come from the world's code, which the
        stage reaches by name only (no stage imports the test world)."""
        return {"truth_report": module_graph.content_hash(TRUTH_REPORT)} if p.world else {}

    def run(self, ctx: Context, p: ExportParams) -> list[Ledger]:
        spark = ctx.spark
        # A MERGE, not a replace: the Change Data Feed shows the rows a rerun inserted,
        # updated and deleted (an incremental run changes few).
        ctx.merge_replace("gold.realsyn", realsyn_rows(ctx), change_data_feed=True)
        gold = ctx.read("gold.realsyn")
        final_dir = self.out_dir(p)
        out_dir = object_files.join(final_dir, STAGING)
        images = kept_image_bytes(ctx.read)
        staged = stage_exports(spark, gold, images, p, final_dir, ctx.run_id, ctx.full_refresh, ctx.task_profile,
                               ctx.say)
        counts, writers = staged.counts, staged.writers
        ledger = export_ledger(ctx.read("gold.image_clusters"), gold)
        # The card is drawn on the driver's disk, then copied beside the data.
        with tempfile.TemporaryDirectory(prefix="realsyn-card-") as staging:
            card_dir = out_dir if object_files.is_local(out_dir) else staging
            os.makedirs(card_dir, exist_ok=True)
            written = write_card(ctx, p, gold, images, counts, [ledger, *writers], staged.files, card_dir)
            for path in written:
                ctx.tracker.artifact(path, "dataset_card")
                if card_dir != out_dir:
                    object_files.upload(path, object_files.join(out_dir, os.path.basename(path)))
        commit(spark, final_dir, staged.manifest, [os.path.basename(path) for path in written],
               {"run": ctx.run_id, "subsets": counts, "writers": {w.name: w.kept for w in writers}})
        ctx.tracker.metrics({f"subset_{c}": n for c, n in counts.items()})
        return [ledger, *writers]


def stage_funnel(ctx: Context, this_run: list[Ledger]) -> list[dict]:
    """The latest recorded ledgers of every stage (meta.stage_runs), then this run's."""
    rows = []
    for r in ctx.latest_runs():
        for name, led in json.loads(r["ledger"] or "{}").items():
            rows.append({"stage": r["stage"], "ledger": name, "in": led["in"], "kept": led["kept"],
                         "rejected": led["rejected"]})
    rows.extend({"stage": ctx.stage.name, "ledger": led.name, "in": led.rows_in, "kept": led.kept,
                 "rejected": led.rejected} for led in this_run)
    return rows


def table_counts(ctx: Context) -> dict[str, dict]:
    """Rows and kept rows of each pipeline table (declared inputs of export, for the card),
    one aggregate per table in a single job."""
    counts = []
    for name in FUNNEL_TABLES:
        df = ctx.read(name)
        kept = F.count(F.when(F.col("status") == "kept", 1)) if "status" in df.columns else F.count(F.lit(1))
        counts.append(df.agg(F.lit(name).alias("table"), F.count(F.lit(1)).alias("rows"), kept.alias("kept")))
    rows = functools.reduce(DataFrame.unionByName, counts).collect()
    by_name = {r["table"]: {"rows": int(r["rows"]), "kept": int(r["kept"])} for r in rows}
    return {name: by_name[name] for name in FUNNEL_TABLES}


def write_card(ctx: Context, p: ExportParams, gold: DataFrame, images: DataFrame, counts: dict,
               ledgers: list[Ledger],
               files: list[str], out_dir: str) -> list[str]:
    """README.md with the funnel, subset counts and figures (PNGs); returns the files."""
    caps = sorted(p.caps)
    clusters = ctx.read("gold.image_clusters")
    per_cluster = (clusters.where("status = 'kept'").groupBy("cluster_id")
                   .agg(F.count(F.lit(1)).alias("size"),
                        *[F.count(F.when(F.col("min_cap") <= c, 1)).alias(f"cap{c}") for c in caps])
                   .toArrow())
    sizes = per_cluster.column("size").to_numpy()
    capped = {c: per_cluster.column(f"cap{c}").to_numpy() for c in caps}
    bins = p.card_sim_bins
    edges = np.linspace(-1.0, 1.0, bins + 1)
    bucket = F.least(F.greatest(F.floor((F.col("sim") + 1.0) / (2.0 / bins)), F.lit(0)), F.lit(bins - 1))
    hist = np.zeros(bins, dtype=np.int64)
    for r in clusters.where(F.col("sim").isNotNull()).groupBy(bucket.cast("int").alias("b")).count().collect():
        hist[r["b"]] = r["count"]
    seed = p.seed
    samples = (gold.where(F.col("min_cap").isNotNull()).join(images, "image_id")
               .orderBy(F.xxhash64("image_id", F.lit(seed)), "image_id").limit(p.card_samples)
               .select("bytes", "text1", "syn_text").toArrow().to_pylist())
    figures = {
        "cluster sizes before and after balancing": os.path.basename(
            card.cluster_size_png(f"{out_dir}/cluster_sizes.png", sizes, capped)),
        "image-text similarity": os.path.basename(card.similarity_png(
            f"{out_dir}/similarity.png", edges, hist, (p.sim_min, p.sim_max))),
        "sample pairs": os.path.basename(card.sample_grid_png(f"{out_dir}/samples.png", samples)),
    }
    data = {"run": ctx.run_id, "config_hash": ctx.params_hash, "gold_rows": ledgers[0].kept,
            "subsets": counts, "stages": stage_funnel(ctx, ledgers), "tables": table_counts(ctx), "files": files,
            "clusters": int(len(sizes))}
    if p.world:
        report = importlib.import_module(TRUTH_REPORT)
        data["truth"] = report.truth_report(gold, ctx.read("bronze.documents"), p.world)
        data["coverage"] = report.coverage_report(gold, p.world, p.caps, p.seed)
        data["sentence_dedup"] = report.sentence_dedup_report(
            ctx.read("silver.sentences"), ctx.read("silver.sentence_neighbours"), ctx.read("silver.sentence_dedup"))
        data["sentence_filters"] = report.sentence_filter_report(ctx.read("silver.sentences"), p.world)
    with open(f"{out_dir}/README.md", "w") as fh:
        fh.write(card.card_markdown(data, figures))
    return [f"{out_dir}/README.md"] + [f"{out_dir}/{name}" for name in figures.values()]


if __name__ == "__main__":
    sys.exit(Export.main())
