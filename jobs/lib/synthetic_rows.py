"""gold.synthetic rows for a unit of images: those with an R1 go through the generation
body (udfs/synthesis.py: caption, fusion), those without get their rejected row. The
generate units' work code together with udfs/synthesis.py (it reaches no runtime module)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.udfs.synthesis import OUTPUT_DDL


def synthetic_rows(unit: DataFrame, image_bytes: DataFrame, fn, tasks: int, profile=None) -> DataFrame:
    """unit: (image_id, tags, r1_id, r1); image_bytes: (image_id, bytes); fn: synthesize()."""
    with_r1 = unit.where(F.col("r1").isNotNull())
    made = (with_r1.drop("r1_id").join(image_bytes, "image_id").repartition(tasks, "image_id")
            .mapInPandas(fn, OUTPUT_DDL, profile=profile)
            .join(with_r1.select("image_id", "r1_id"), "image_id"))
    no_r1 = unit.where(F.col("r1").isNull()).select(
        "image_id", F.lit(None).cast("string").alias("r1_id"), F.lit(None).cast("string").alias("caption"),
        "tags", F.lit(None).cast("string").alias("syn_text"),
        F.lit(None).cast("string").alias("models"), F.lit("rejected").alias("status"),
        F.lit("no_raw_text").alias("reason"))
    out = made.unionByName(no_r1).withColumn("models", F.from_json("models", "map<string,string>"))
    return out.select("image_id", "r1_id", "caption", "tags", "syn_text", "models", "status", "reason")
