"""semantic_dedup: the threshold over semantic_neighbours' scores, as a filter.

An item whose closest earlier neighbour is at least `threshold` similar is a duplicate_semantic.
Its neighbour links form a forest (each link points to an item ranked earlier); the root of
each tree is the kept item every duplicate in it stands for, found as connected components
on the executors. Only this stage reruns when a threshold changes."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.connected_components import component_representatives, connected_components
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.declared import setting


@dataclass(frozen=True, kw_only=True)
class SemanticDedupParams(StageParams):
    image_cosine: float = setting("images.semantic_dedup_cosine")
    sentence_cosine: float = setting("sentences.semantic_dedup_cosine")


def verdicts(scores: DataFrame, key: str, threshold: float) -> DataFrame:
    """(key, duplicate_of, status, reason) for every scored item."""
    links = (scores.where(F.col("max_sim") >= threshold)
             .select(F.col(key).alias("src"), F.col("neighbour").alias("dst")))
    # The order semantic_neighbours ranked by: a tree's root has the smallest (rank, id).
    reps = component_representatives(connected_components(links), scores.select(key, "rank"), key)
    dup = F.col("rep").isNotNull() & (F.col("rep") != F.col(key))
    return (scores.select(key).join(reps, key, "left")
            .select(key, F.when(dup, F.col("rep")).alias("duplicate_of"),
                    F.when(dup, "rejected").otherwise("kept").alias("status"),
                    F.when(dup, "duplicate_semantic").alias("reason")))


class SemanticDedup(Stage):
    name = "semantic_dedup"
    description = "semantic duplicates: the cosine threshold over the stored neighbour scores"
    inputs = ("silver.image_neighbours", "silver.sentence_neighbours")
    outputs = ("silver.image_dedup", "silver.sentence_dedup")
    Params = SemanticDedupParams
    resources = TaskResources(cpus=1)   # joins and aggregates only

    def run(self, ctx: Context, p: SemanticDedupParams) -> list[Ledger]:
        ledgers = []
        for scores_table, out, key, threshold in (
                ("silver.image_neighbours", "silver.image_dedup", "image_id", p.image_cosine),
                ("silver.sentence_neighbours", "silver.sentence_dedup", "sentence_id", p.sentence_cosine)):
            scores = ctx.read(scores_table)
            ctx.write(out, verdicts(scores, key, threshold))
            ledgers.append(ledger_from_status(out.split(".")[1], scores.count(), ctx.read(out)))
        return ledgers


if __name__ == "__main__":
    sys.exit(SemanticDedup.main())
