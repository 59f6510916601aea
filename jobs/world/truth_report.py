"""The dataset card's figures against a world's ground truth (export.world), on the cluster.

Per gold row, the attribute precision (jobs/world/quality.py) of text1, text2, text3 and
syn_text, and of the image's neighbouring text in its bronze document, the baseline;
the executors compute them and the driver gets only the means. The truth map is one entry
per world image, small by construction (the world is a generated test corpus).

Concept coverage (jobs/world/coverage.py) of the pool and of each subset, beside random
subsets of the same size: one (url, cluster, min_cap) row per gold pair reaches the driver,
no more than the truth map holds already.
"""
from __future__ import annotations

from functools import partial

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.world.coverage import Pair, coverage
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
