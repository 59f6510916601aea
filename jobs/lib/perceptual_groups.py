"""Perceptual duplicate groups kept between runs and updated with new images only.

silver.image_groups holds every dedup candidate (image_id, phash, rank) with its group
(`component`, the group's smallest id) and the group's representative (`rep`, the
smallest rank, ties the smallest id: the rule of jobs/lib/keep_rank.py). An increment that only
adds candidates compares the new hashes with everything through the band buckets the new
hashes fall in (jobs/lib/perceptual_dedup.py), never old against old: the old candidates that
share a band value with a new hash enter the pair join, each linked to its stored group,
and the connected components of those edges merge the stored groups the new images touch.
Only the rows whose group or representative changed are written.

A candidate that left, or whose hash or rank changed (a decoder or filter change), can split
a group: then every group is computed again (`full_groups`), as on a first run.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.connected_components import connected_components
from realsyn.jobs.lib.perceptual_dedup import _bits, band_layout, perceptual_edges

COLUMNS = ("image_id", "phash", "rank", "component", "rep")


def with_reps(rows: DataFrame) -> DataFrame:
    """rows: image_id, phash, rank, component (every member of each group present)."""
    best = rows.groupBy("component").agg(F.min(F.struct("rank", "image_id")).getField("image_id").alias("rep"))
    return rows.join(best, "component").select(*COLUMNS)


def _labelled(rows: DataFrame, comps: DataFrame) -> DataFrame:
    """rows with the component comps gives them, else their own id (a group of one)."""
    return (rows.join(comps.select(F.col("vertex").alias("image_id"), "component"), "image_id", "left")
            .withColumn("component", F.coalesce("component", "image_id")))


def full_groups(candidates: DataFrame, max_hamming: int, bucket_max: int) -> DataFrame:
    """candidates: image_id (distinct), phash, rank -> every candidate with component and rep."""
    comps = connected_components(perceptual_edges(candidates, max_hamming, bucket_max))
    return with_reps(_labelled(candidates.select("image_id", "phash", "rank"), comps))


def _band_values(df: DataFrame, max_hamming: int) -> DataFrame:
    bands = band_layout(64, max_hamming + 1)
    return df.select("image_id", F.posexplode(F.array(*[_bits(F.col("phash"), s, w) for s, w in bands]))
                     .alias("band", "value"))


def needs_full(stored: DataFrame, candidates: DataFrame) -> bool:
    """True when a stored candidate left or changed its hash or rank: groups may split."""
    key = ["image_id", "phash", "rank"]
    return not stored.select(*key).exceptAll(candidates.select(*key)).isEmpty()


def group_changes(stored: DataFrame, candidates: DataFrame, max_hamming: int, bucket_max: int) -> DataFrame:
    """The rows to upsert into the stored groups so they equal full_groups(candidates), given
    that every stored candidate is still a candidate with the same hash and rank."""
    new = candidates.select("image_id", "phash", "rank").join(stored.select("image_id"), "image_id", "left_anti")
    new = new.localCheckpoint()
    touched = _band_values(new, max_hamming).select("band", "value").distinct()
    near = (_band_values(stored, max_hamming).join(touched, ["band", "value"], "left_semi")
            .select("image_id").distinct().join(stored, "image_id"))
    edges = perceptual_edges(new.unionByName(near.select("image_id", "phash", "rank")), max_hamming, bucket_max)
    # Each old image in the join stands for its stored group: link it to the group's id.
    links = near.where(F.col("image_id") != F.col("component")).select(
        F.col("image_id").alias("src"), F.col("component").alias("dst"))
    comps = connected_components(edges.unionByName(links)).localCheckpoint()
    # Every stored row of a group that entered the graph (its id is a vertex) takes the merged id.
    moved = (stored.join(comps.select(F.col("vertex").alias("component"), F.col("component").alias("merged")),
                         "component")
             .select("image_id", "phash", "rank", F.col("merged").alias("component")))
    rows = with_reps(moved.unionByName(_labelled(new, comps).select("image_id", "phash", "rank", "component")))
    return rows.exceptAll(stored.select(*COLUMNS))
