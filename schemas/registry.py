"""The contract between stages: one StructType per Delta table, with keys and partitioning.

Column comments and the table description are written into the Delta metadata, so
downstream readers understand the tables without this code.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (ArrayType, BinaryType, DoubleType, FloatType, IntegerType,
                               LongType, MapType, StringType, StructField, StructType,
                               TimestampType)


def c(name: str, dtype, comment: str, nullable: bool = True) -> StructField:
    return StructField(name, dtype, nullable, {"comment": comment})


@dataclass(frozen=True)
class TableSpec:
    name: str                      # "layer.table"
    schema: StructType
    keys: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    # Columns Delta keeps min/max stats for (None: its default, the first 32). Stats on a
    # random hash id prune nothing and cost a string min/max per row on every write.
    stats_columns: tuple[str, ...] | None = None
    # Parquet row group size of the table's files (None: the writer's default, 128 MiB).
    row_group_bytes: int | None = None

    @property
    def layer(self) -> str:
        return self.name.split(".")[0]


STATUS = c("status", StringType(), "kept or rejected", nullable=False)
REASON = c("reason", StringType(), "why the row was rejected; null when kept")

DOCUMENTS = TableSpec(
    "bronze.documents",
    StructType([
        c("doc_id", StringType(), "sha256 of the document's images and texts lists", False),
        c("url", StringType(), "document URL from general_metadata"),
        c("images", ArrayType(StringType()), "per slot: image URL or null"),
        c("texts", ArrayType(StringType()), "per slot: text or null"),
        c("metadata", StringType(), "OBELICS metadata: JSON list, one dict per slot"),
        c("general_metadata", StringType(), "OBELICS general_metadata JSON"),
        c("n_images", IntegerType(), "number of image slots"),
        c("n_texts", IntegerType(), "number of text slots"),
        c("source_file", StringType(), "input file the row came from"),
    ]),
    keys=("doc_id",),
    description="Validated OBELICS-format interleaved documents, one row per distinct document.",
)

DOCUMENT_REJECTS = TableSpec(
    "bronze.document_rejects",
    StructType([
        c("source_file", StringType(), "input file the row came from"),
        c("row_index", LongType(), "position of the row in the input, when known"),
        c("reason", StringType(), "why the document was rejected", False),
        c("detail", StringType(), "more about the reason"),
        c("raw", StringType(), "the rejected row as JSON, truncated"),
    ]),
    keys=("source_file", "row_index", "reason"),
    description="Input documents that failed validation, with the reason. in = documents + rejects. "
                "An input file that cannot be read whole is one row (reason corrupt_input_file, row_index -1).",
)

IMAGE_FETCHES = TableSpec(
    "silver.image_fetches",
    StructType([
        c("url_id", StringType(), "sha256 of the image URL", False),
        c("bytes", BinaryType(), "the response body as fetched (at most fetch.max_bytes), when one arrived"),
        c("http_status", IntegerType(), "last HTTP status, when fetched over HTTP"),
        c("image_id", StringType(), "sha256 of the fetched bytes (content address)"),
        c("fetch_reason", StringType(), "why no body arrived (timeout, http_404, opt_out, ...); null when one did"),
    ]),
    keys=("url_id",),
    description="What the web answered for each image URL, written in units (the fetch's resume point) and "
                "kept: decoding changes never fetch again (silver.image_decodes decodes the stored bytes).",
    stats_columns=("fetch_reason",),
)

IMAGE_DECODES = TableSpec(
    "silver.image_decodes",
    StructType([
        c("image_id", StringType(), "sha256 of the fetched bytes (content address)", False),
        c("width", IntegerType(), "pixels"),
        c("height", IntegerType(), "pixels"),
        c("format", StringType(), "decoded format (JPEG, PNG, ...)"),
        c("phash", LongType(), "64-bit DCT perceptual hash"),
        c("decode_reason", StringType(), "why the bytes cannot be used (not_an_image, decompression_bomb, ...); "
                                         "null when they decoded"),
    ]),
    keys=("image_id",),
    description="One decode per distinct fetched content, written in units under the decoder's work "
                "fingerprint (its code and limits); silver.images joins it to the fetches.",
    stats_columns=("decode_reason",),
)

IMAGE_GROUPS = TableSpec(
    "silver.image_groups",
    StructType([
        c("image_id", StringType(), "sha256 of the fetched bytes (a dedup candidate: decoded, passed the filters)", False),
        c("phash", LongType(), "64-bit DCT perceptual hash"),
        c("rank", LongType(), "minus the pixel count: the smallest rank represents its group"),
        c("component", StringType(), "the smallest image_id of its perceptual group (its own id when alone)"),
        c("rep", StringType(), "the group's representative: its largest image, ties the smallest id"),
    ]),
    keys=("image_id",),
    description="Perceptual duplicate groups of the image candidates, kept between runs: an increment "
                "compares only new hashes with the others and updates the groups they touch.",
)

IMAGES = TableSpec(
    "silver.images",
    StructType([
        c("url_id", StringType(), "sha256 of the image URL", False),
        c("url", StringType(), "image URL as found in the document"),
        c("doc_id", StringType(), "first document (by id) the URL appeared in"),
        c("alt_text", StringType(), "alt text from the slot metadata"),
        c("image_id", StringType(), "sha256 of the fetched bytes (content address)"),
        c("width", IntegerType(), "pixels"),
        c("height", IntegerType(), "pixels"),
        c("format", StringType(), "decoded format (JPEG, PNG, ...)"),
        c("phash", LongType(), "64-bit DCT perceptual hash"),
        c("http_status", IntegerType(), "last HTTP status, when fetched over HTTP"),
        c("duplicate_of", StringType(), "image_id this one duplicates, for duplicates"),
        STATUS, REASON,
    ]),
    keys=("url_id",),
    description="Global image pool: every image URL with its fetch, decode, quality and dedup outcome. "
                "No bytes: a kept image's bytes live once, in silver.image_fetches (same url_id).",
)

DOCUMENT_SENTENCES = TableSpec(
    "silver.document_sentences",
    StructType([
        c("doc_id", StringType(), "document id (bronze.documents)", False),
        c("sentences", ArrayType(StructType([
            StructField("sentence_id", StringType()), StructField("text", StringType())])),
          "the document's text slots split into sentences, in order, repeats included"),
    ]),
    keys=("doc_id",),
    description="Each document's sentences, written in units: the split runs once per document, "
                "and silver.sentences counts occurrences from here.",
)

SENTENCES = TableSpec(
    "silver.sentences",
    StructType([
        c("sentence_id", StringType(), "sha256 of the normalised sentence", False),
        c("text", StringType(), "sentence text as split"),
        c("n_words", IntegerType(), "word count"),
        c("n_occurrences", LongType(), "how many times the sentence occurred in the corpus"),
        c("complexity", IntegerType(), "CAT-style complexity score"),
        c("has_action", StringType(), "true/false, or null when the filter did not run"),
        c("entropy", DoubleType(), "entropy of its own words over the maximum ln n (0: one word repeated, 1: no repeats)"),
        c("perplexity", DoubleType(), "causal LM perplexity; null when the filter did not run"),
        c("duplicate_of", StringType(), "sentence_id this one duplicates, for duplicates"),
        STATUS, REASON,
    ]),
    keys=("sentence_id",),
    description="Global sentence pool: every distinct sentence with its filter outcome.",
)

IMAGE_EMBEDDINGS = TableSpec(
    "silver.image_embeddings",
    StructType([
        c("image_id", StringType(), "image content hash", False),
        c("embedding", BinaryType(), "L2-normalised vector, little-endian float32 or float16"),
        c("model", StringType(), "encoder name, pretrained tag or weights hash"),
        c("dim", IntegerType(), "vector dimension"),
        c("dtype", StringType(), "float32 or float16"),
        STATUS, REASON,
    ]),
    keys=("image_id",),
    description="CLIP image embeddings of kept images (vectors as fixed-size binary); semantic duplicates are marked in silver.image_dedup.",
)

SENTENCE_EMBEDDINGS = TableSpec(
    "silver.sentence_embeddings",
    StructType([
        c("sentence_id", StringType(), "sentence hash", False),
        c("embedding", BinaryType(), "L2-normalised vector, little-endian float32 or float16"),
        c("model", StringType(), "encoder name, pretrained tag or weights hash"),
        c("dim", IntegerType(), "vector dimension"),
        c("dtype", StringType(), "float32 or float16"),
        STATUS, REASON,
    ]),
    keys=("sentence_id",),
    description="CLIP text embeddings of kept sentences (vectors as fixed-size binary); semantic duplicates are marked in silver.sentence_dedup.",
)

def _neighbours(kind: str, key: str, key_comment: str) -> TableSpec:
    return TableSpec(
        f"silver.{kind}_neighbours",
        StructType([
            c(key, StringType(), key_comment, False),
            c("dedup_cluster", IntegerType(), "semantic dedup coarse k-means group (not retrieval's clusters)"),
            c("dedup_subcluster", IntegerType(), "fine k-means cluster inside that group: pairs are scored only inside one"),
            c("rank", LongType(), "keep order inside a cluster, with the id: minus the pixel count for images, 0 for sentences"),
            c("neighbour", StringType(), f"most similar {kind} ranked before this one in its cluster; null for the first"),
            c("max_sim", DoubleType(), "cosine to that neighbour; null for the first"),
        ]),
        keys=(key,),
        description=f"Semantic dedup scores: every {kind} embedding's closest earlier neighbour in its two-level "
                    f"k-means cluster (rank: {'largest image' if kind == 'image' else 'smallest id'} first). "
                    "A threshold over max_sim is the whole dedup decision.",
        stats_columns=("dedup_cluster",),
    )


def _dedup_centroids(kind: str) -> TableSpec:
    return TableSpec(
        f"silver.{kind}_dedup_centroids",
        StructType([
            c("dedup_cluster", IntegerType(), "coarse group", False),
            c("dedup_subcluster", IntegerType(), "fine cluster inside the group; -1 for the group's coarse centroid",
              False),
            c("centroid", BinaryType(), "L2-normalised float32 centroid"),
        ]),
        keys=("dedup_cluster", "dedup_subcluster"),
        description=f"The two-level k-means of the {kind} dedup scores, kept so an increment assigns only its "
                    "new rows (a group kept whole has no fine centroid: its rows are all in fine cluster 0).",
    )


def _dedup(kind: str, key: str, key_comment: str) -> TableSpec:
    return TableSpec(
        f"silver.{kind}_dedup",
        StructType([
            c(key, StringType(), key_comment, False),
            c("duplicate_of", StringType(), "the kept item its chain of earlier neighbours ends at, for duplicates"),
            STATUS, REASON,
        ]),
        keys=(key,),
        description=f"Semantic dedup verdict per {kind} embedding: kept, or duplicate_semantic with its representative. "
                    f"Kept {kind} vectors are the kept rows of silver.{kind}_embeddings that are kept here.",
        stats_columns=("status",),
    )


IMAGE_NEIGHBOURS = _neighbours("image", "image_id", "image content hash")
SENTENCE_NEIGHBOURS = _neighbours("sentence", "sentence_id", "sentence hash")
IMAGE_DEDUP_CENTROIDS = _dedup_centroids("image")
SENTENCE_DEDUP_CENTROIDS = _dedup_centroids("sentence")
IMAGE_DEDUP = _dedup("image", "image_id", "image content hash")
SENTENCE_DEDUP = _dedup("sentence", "sentence_id", "sentence hash")


TEXT_CENTROIDS = TableSpec(
    "gold.text_centroids",
    StructType([
        c("cluster_id", IntegerType(), "k-means cluster", False),
        c("centroid", BinaryType(), "L2-normalised float32 centroid"),
        c("model", StringType(), "encoder the centroids were fitted on"),
        c("coarse_id", IntegerType(), "coarse group the centroid was fitted in (0: one flat level)", False),
    ]),
    keys=("cluster_id",),
    description="k-means centroids of the sentence embeddings (retrieval's first step).",
)

TEXT_COARSE_CENTROIDS = TableSpec(
    "gold.text_coarse_centroids",
    StructType([
        c("coarse_id", IntegerType(), "coarse k-means group", False),
        c("centroid", BinaryType(), "L2-normalised float32 centroid"),
        c("model", StringType(), "encoder the centroids were fitted on"),
    ]),
    keys=("coarse_id",),
    description="Coarse groups of gold.text_centroids (two levels from retrieval.coarse_min_clusters "
                "clusters up; no rows for one flat level): a row's cluster is its nearest centroid "
                "in its nearest group.",
)

SENTENCE_CLUSTERS = TableSpec(
    "gold.sentence_clusters",
    StructType([
        c("cluster_id", IntegerType(), "nearest centroid (in the nearest coarse group)", False),
        c("sentence_id", StringType(), "sentence hash", False),
        c("embedding", BinaryType(), "sentence vector, stored clustered to avoid a shuffle per run"),
    ]),
    keys=("sentence_id",),
    description="Every kept sentence with its nearest centroid, stored clustered by cluster_id.",
)

RETRIEVALS = TableSpec(
    "gold.retrievals",
    StructType([
        c("image_id", StringType(), "image content hash", False),
        c("rank", IntegerType(), "1 = most similar (text1); 0 marks an image with no candidate", False),
        c("sentence_id", StringType(), "retrieved sentence"),
        c("score", FloatType(), "cosine similarity"),
        c("reason", StringType(), "why an image has no candidate (rank 0 rows only)"),
    ]),
    keys=("image_id", "rank"),
    description="Top-k realistic sentences per image from hierarchical retrieval.",
)

SYNTHETIC = TableSpec(
    "gold.synthetic",
    StructType([
        c("image_id", StringType(), "image content hash", False),
        c("r1_id", StringType(), "sentence_id of the R1 the text was fused with (a new R1 regenerates it)"),
        c("caption", StringType(), "captioner output"),
        c("tags", ArrayType(StringType()), "object tags"),
        c("syn_text", StringType(), "fused synthetic text, lowercased"),
        c("models", MapType(StringType(), StringType()), "model ids used"),
        STATUS, REASON,
    ]),
    keys=("image_id",),
    description="One synthetic text per image (caption + tags + LLM fusion with R1).",
)

PAIR_VECTORS = TableSpec(
    "gold.pair_vectors",
    StructType([
        c("image_id", StringType(), "image content hash", False),
        c("embedding", BinaryType(), "image vector (as in silver.image_embeddings)"),
        c("text_vec", BinaryType(), "synthetic-text vector, same CLIP and dtype; null when it failed to encode"),
        c("model", StringType(), "CLIP model of both vectors"),
        c("sample_key", IntegerType(), "seeded hash bucket of image_id in [0, 1000000): the k-means sample is "
          "every pair below a threshold; each file is sorted on it, so the sample reads few row groups", False),
        c("text_hash", LongType(), "xxhash64 of the synthetic text encoded: with image_id the key of balance's "
          "units, so a new or changed text is encoded again and no other"),
        c("run_version", LongType(), "version of this table the run that encoded the pair started from: an "
          "increment of gold.image_clusters reads only the files of pairs encoded since it last looked"),
    ]),
    keys=("image_id",),
    description="Image and synthetic-text vectors per kept synthetic pair: what balance samples from, "
                "written in units (only new or changed texts are encoded).",
    stats_columns=("sample_key", "run_version"),
    row_group_bytes=16 << 20,
)

IMAGE_CENTROIDS = TableSpec(
    "gold.image_centroids",
    StructType([
        c("cluster_id", IntegerType(), "image k-means cluster", False),
        c("centroid", BinaryType(), "L2-normalised float32 centroid"),
        c("model", StringType(), "CLIP model of the pairs the centroids were fitted on"),
    ]),
    keys=("cluster_id",),
    description="k-means centroids of the balanced pairs' image vectors, kept between runs like "
                "gold.text_centroids: while they fit, an increment assigns only new pairs and ranks again only "
                "the clusters that gained or lost one.",
)

IMAGE_CLUSTERS = TableSpec(
    "gold.image_clusters",
    StructType([
        c("image_id", StringType(), "image content hash", False),
        c("cluster_id", IntegerType(), "image k-means cluster"),
        c("sim", FloatType(), "image / synthetic text cosine"),
        c("rank_in_cluster", IntegerType(), "seeded random rank inside the cluster"),
        c("min_cap", IntegerType(), "smallest cap t whose subset holds the image"),
        STATUS, REASON,
    ]),
    keys=("image_id",),
    description="Semantic balance sampling: cluster, rank and subset membership per image.",
    stats_columns=("cluster_id", "sim", "rank_in_cluster", "min_cap"),
)

REALSYN = TableSpec(
    "gold.realsyn",
    StructType([
        c("image_id", StringType(), "image content hash", False),
        c("raw_image_url", StringType(), "image URL"),
        c("text1", StringType(), "most similar realistic text"),
        c("text2", StringType(), "second realistic text"),
        c("text3", StringType(), "third realistic text"),
        c("syn_text", StringType(), "synthetic text"),
        c("score1", FloatType(), "cosine of text1"),
        c("sim", FloatType(), "image / syn_text cosine"),
        c("cluster_id", IntegerType(), "image cluster"),
        c("min_cap", IntegerType(), "smallest cap t whose subset holds the pair"),
    ]),
    keys=("image_id",),
    description="The RealSyn dataset: image, realistic texts, synthetic text and subset caps.",
)

STAGE_RUNS = TableSpec(
    "meta.stage_runs",
    StructType([
        c("stage", StringType(), "stage name", False),
        c("fingerprint", StringType(), "hash of declared parameters, imported code, weights and input versions",
          False),
        c("config_hash", StringType(), "hash of the stage's declared parameters"),
        c("input_versions", MapType(StringType(), LongType()), "Delta version of each input table"),
        c("output_versions", MapType(StringType(), LongType()), "Delta version of each output table"),
        c("ledger", StringType(), "JSON: rows in / kept / rejected by reason"),
        c("mlflow_run_id", StringType(), "MLflow child run"),
        c("seconds", DoubleType(), "wall time"),
        c("finished_at", TimestampType(), "UTC time the stage committed"),
    ]),
    keys=("stage", "finished_at"),
    description="One row per finished stage run: what it read, what it wrote, its ledger.",
)

REGISTRY: dict[str, TableSpec] = {t.name: t for t in [
    DOCUMENTS, DOCUMENT_REJECTS, IMAGE_FETCHES, IMAGE_DECODES, IMAGE_GROUPS, IMAGES, DOCUMENT_SENTENCES, SENTENCES, IMAGE_EMBEDDINGS, SENTENCE_EMBEDDINGS,
    IMAGE_NEIGHBOURS, SENTENCE_NEIGHBOURS, IMAGE_DEDUP_CENTROIDS, SENTENCE_DEDUP_CENTROIDS, IMAGE_DEDUP, SENTENCE_DEDUP, TEXT_CENTROIDS, TEXT_COARSE_CENTROIDS, SENTENCE_CLUSTERS, RETRIEVALS, SYNTHETIC, PAIR_VECTORS, IMAGE_CENTROIDS, IMAGE_CLUSTERS, REALSYN, STAGE_RUNS,
]}


def spec(name: str) -> TableSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known tables: {', '.join(sorted(REGISTRY))}") from None


class SchemaMismatch(ValueError):
    pass


def check_schema(name: str, actual: StructType) -> None:
    """Fail with a readable diff when a DataFrame does not match its table's schema.

    Names and types must match exactly; nullability is not compared (Delta relaxes it
    on CTAS) and key columns are null-checked by the writer instead.
    """
    expected = spec(name).schema
    exp = {f.name: f.dataType for f in expected.fields}
    act = {f.name: f.dataType for f in actual.fields}
    problems = []
    missing = [n for n in exp if n not in act]
    extra = [n for n in act if n not in exp]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    for n in exp:
        if n in act and act[n] != exp[n]:
            problems.append(f"column '{n}' is {act[n].simpleString()}, expected {exp[n].simpleString()}")
    if problems:
        raise SchemaMismatch(f"table {name}: DataFrame does not match the registered schema: " + "; ".join(problems))
