"""The dataset card's figures against a world's ground truth (export.world), on the cluster.

Per gold row, the attribute precision (jobs/world/quality.py) of text1, text2, text3 and
syn_text, and of the image's neighbouring text in its bronze document, the baseline;
the executors compute them and the driver gets only the means. The truth map is one entry
per world image, small by construction (the world is a generated test corpus).

Concept coverage (jobs/world/coverage.py) of the pool and of each subset, beside random
subsets of the same size: one (url, cluster, min_cap) row per gold pair reaches the driver,
no more than the truth map holds already.

Semantic sentence dedup (jobs/world/dedup_truth.py): every stored link and every removed
sentence is classed on the executors; the driver gets one count per (threshold, kind).

Sentence filters (jobs/world/filter_truth.py): silver.sentences joined by text with the
world's descriptions and planted junk (one row per sentence the world wrote, broadcast);
the driver gets one count per (class, reason).
"""
from __future__ import annotations

from collections import Counter
from functools import partial

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.world.coverage import Pair, coverage
from realsyn.jobs.world.dedup_truth import KINDS, THRESHOLDS, dedup_truth, link_kind
from realsyn.jobs.world.filter_truth import PROSE, filter_truth, sentence_classes
from realsyn.jobs.world.quality import image_key, neighbouring_pairs, precision_and_named, read_truth
from realsyn.udfs.row_functions import exploded_fn, pair_scores_fn

TEXTS = ("text1", "text2", "text3", "syn_text")


def document_neighbours(document: dict) -> list[tuple[str, str, str]]:
    """(url, doc_id, neighbouring text) of each image of one document."""
    return [(url, document["doc_id"], text) for url, text in neighbouring_pairs([document]).items()]


def text_score(truth: dict, url: str, text: str) -> tuple:
    """A text's precision and whether it names a concept (nulls: the image has no truth)."""
    concepts = truth.get(image_key(url))
    return (None, None) if concepts is None else precision_and_named(text, concepts)


def neighbour_rows(documents: DataFrame) -> DataFrame:
    """(raw_image_url, neighbour): each image URL's neighbouring text; an image linked from
    several documents takes it from the one with the smallest doc_id."""
    body = exploded_fn(document_neighbours, ["raw_image_url", "doc_id", "neighbour"])
    return (documents.select("doc_id", "images", "texts")
            .mapInPandas(body, "raw_image_url string, doc_id string, neighbour string")
            .groupBy("raw_image_url").agg(F.min_by("neighbour", "doc_id").alias("neighbour")))


def truth_report(gold: DataFrame, documents: DataFrame, world: str) -> dict:
    """{text column or neighbouring_text: {pairs, precision, names_a_concept}} over the gold
    rows whose image has a truth; text1-3 pools every retrieved sentence present."""
    truth = read_truth(world)
    # Each text parsed once: its precision and whether it names a concept.
    score = F.pandas_udf(pair_scores_fn(partial(text_score, truth), ["precision", "named"], "float64"),
                         "precision double, named double")

    rows = gold.select("raw_image_url", *TEXTS).join(neighbour_rows(documents), "raw_image_url", "left")
    cols = {**{c: c for c in TEXTS}, "neighbouring_text": "neighbour"}
    aggs = []
    for name, col in cols.items():
        # text2 / text3 count only where the row has one (an image may have fewer than k sentences).
        present = F.col(col).isNotNull() if name in ("text2", "text3") else F.lit(True)
        text = F.coalesce(F.col(col), F.lit(""))
        scored = score("raw_image_url", text)
        p, n = F.when(present, scored["precision"]), F.when(present, scored["named"])
        aggs += [F.count(p).alias(f"{name}__pairs"), F.sum(p).alias(f"{name}__sum"), F.sum(n).alias(f"{name}__named")]
    got = rows.agg(*aggs).first().asDict()
    totals = {name: (int(got[f"{name}__pairs"] or 0), float(got[f"{name}__sum"] or 0.0),
                     float(got[f"{name}__named"] or 0.0)) for name in cols}
    pooled = [totals[c] for c in ("text1", "text2", "text3")]
    totals["text1-3"] = (sum(t[0] for t in pooled), sum(t[1] for t in pooled), sum(t[2] for t in pooled))
    return {name: {"pairs": n, "precision": total / n if n else None, "names_a_concept": named / n if n else None}
            for name, (n, total, named) in totals.items()}


def coverage_report(gold: DataFrame, world: str, caps, seed: int) -> dict:
    """jobs/world/coverage.coverage over the gold rows whose image has a truth."""
    truth = read_truth(world)
    pool = []
    for r in gold.select("raw_image_url", "cluster_id", "min_cap").orderBy("image_id").collect():
        concepts = truth.get(image_key(r["raw_image_url"]))
        if concepts:
            pool.append(Pair(concepts, r["cluster_id"], r["min_cap"]))
    return coverage(pool, caps, seed=seed)


def link_row(text: object, other: object) -> tuple[str]:
    """One row of the pair's kind (jobs/world/dedup_truth.link_kind); a null text is no text."""
    return (link_kind(text if isinstance(text, str) else None, other if isinstance(other, str) else None),)


def sentence_dedup_report(sentences: DataFrame, neighbours: DataFrame, dedup: DataFrame) -> dict:
    """jobs/world/dedup_truth.dedup_truth over the stored links (silver.sentence_neighbours)
    and the run's verdicts (silver.sentence_dedup), each pair classed by its texts."""
    classed = F.pandas_udf(pair_scores_fn(link_row, ["kind"], "object"), "kind string")

    def kind(a: str, b: str):
        return classed(a, b)["kind"]
    texts = sentences.select("sentence_id", "text")
    other = texts.select(F.col("sentence_id").alias("other"), F.col("text").alias("other_text"))
    links = (neighbours.where(F.col("max_sim").isNotNull())
             .select("sentence_id", F.col("neighbour").alias("other"), "max_sim")
             .join(texts, "sentence_id").join(other, "other")
             .select("max_sim", kind("text", "other_text").alias("kind")))
    at = [F.count(F.when((F.col("max_sim") >= t) & (F.col("kind") == k), 1)).alias(f"{i}__{k}")
          for i, t in enumerate(THRESHOLDS) for k in KINDS]
    got = links.agg(*at).first().asDict()
    removed = (dedup.where(F.col("status") == "rejected")
               .select("sentence_id", F.col("duplicate_of").alias("other"))
               .join(texts, "sentence_id").join(other, "other")
               .select(kind("text", "other_text").alias("kind")).groupBy("kind").count().collect())
    return dedup_truth({t: Counter({k: int(got[f"{i}__{k}"]) for k in KINDS}) for i, t in enumerate(THRESHOLDS)},
                       Counter({r["kind"]: int(r["count"]) for r in removed}), dedup.count())


def sentence_filter_report(sentences: DataFrame, world: str) -> dict:
    """jobs/world/filter_truth.filter_truth over silver.sentences (status, reason) classed by
    the world's record of what it wrote."""
    classes = sentence_classes(world)
    known = sentences.sparkSession.createDataFrame(list(classes.items()), "text string, class string")
    reason = F.when(F.col("status") != "kept", F.coalesce("reason", F.lit("unknown"))).alias("reason")
    rows = (sentences.select("text", reason).join(F.broadcast(known), "text", "left")
            .select(F.coalesce("class", F.lit(PROSE)).alias("class"), "reason")
            .groupBy("class", "reason").count().collect())
    return filter_truth(Counter({(r["class"], r["reason"]): int(r["count"]) for r in rows}),
                        Counter(classes.values()))
