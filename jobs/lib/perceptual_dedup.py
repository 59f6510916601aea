"""Perceptual duplicate groups on the executors: pHash pairs within max_hamming bits, found by
banding (pigeonhole), grouped by connected components; the largest image represents its group.

Work stays linear in the images where a naive self-join would go quadratic:
- images sharing one exact pHash (blank or placeholder images, thousands at a time) become a
  star onto one of them, and only one row per distinct hash enters the band join;
- a band bucket holding more than `bucket_max` distinct hashes is split again by banding the
  bits outside that band (two hashes in it differ only there, so pigeonhole holds again).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.connected_components import component_representatives, connected_components
from realsyn.jobs.lib.keep_rank import image_rank


def band_layout(width: int, n: int) -> list[tuple[int, int]]:
    """(shift, width) of n bands covering the low `width` bits, sizes differing by at most one."""
    widths = [width // n + (1 if i < width % n else 0) for i in range(n)]
    return [(sum(widths[:i]), w) for i, w in enumerate(widths)]


def _bits(x: Column, shift: int, width: int) -> Column:
    if width >= 64:
        return x
    return F.shiftrightunsigned(x, shift).bitwiseAND(F.lit((1 << width) - 1))


def _cut(x: Column, shift: int, width: int) -> Column:
    """x without bits [shift, shift + width), the bits above moved down: 64 - width bits."""
    low = _bits(x, 0, shift) if shift else F.lit(0).cast("long")
    if shift + width >= 64:  # Java's shift counts are mod 64: nothing lies above
        return low
    return F.shiftleft(F.shiftrightunsigned(x, shift + width), shift).bitwiseOR(low)


def _bucket(level_band: Column, value: Column, sub: Column, sub_value: Column) -> Column:
    # -1, never a band value, marks "no second level": struct equality with nulls is never true
    return F.struct(level_band.alias("band"), value.alias("value"), sub.alias("sub"), sub_value.alias("sub_value"))


def perceptual_edges(images: DataFrame, max_hamming: int, bucket_max: int) -> DataFrame:
    """images: image_id (distinct), phash. Edges (src, dst) whose connected components are
    exactly the groups of images chained by pHash distance <= max_hamming."""
    images = images.where(F.col("phash").isNotNull())   # no hash, no perceptual group
    centre = images.groupBy("phash").agg(F.min("image_id").alias("centre"))
    star = (images.join(centre, "phash").where(F.col("image_id") != F.col("centre"))
            .select(F.col("image_id").alias("src"), F.col("centre").alias("dst")))
    if max_hamming == 0:
        return star
    k = max_hamming
    bands = band_layout(64, k + 1)
    banded = centre.select("phash", "centre", F.posexplode(F.array(*[_bits(F.col("phash"), s, w) for s, w in bands]))
                           .alias("band", "value"))
    sizes = banded.groupBy("band", "value").agg(F.count("*").alias("n"))
    banded = banded.join(sizes, ["band", "value"])
    minus1 = F.lit(-1).cast("long")
    cold = banded.where(F.col("n") <= bucket_max).select(
        "phash", "centre", _bucket(F.col("band"), F.col("value"), minus1.cast("int"), minus1).alias("bucket"))
    # Second level, per first-level band: the remaining bits in k + 1 bands of their own.
    subs = None
    for i, (s, w) in enumerate(bands):
        rest = _cut(F.col("phash"), s, w)
        layout = band_layout(64 - w, k + 1)
        if any(sw == 0 for _, sw in layout):   # too few bits left to band again: one bucket
            arr = F.array(F.col("value"))
        else:
            arr = F.array(*[_bits(rest, ss, sw) for ss, sw in layout])
        subs = F.when(F.col("band") == i, arr) if subs is None else subs.when(F.col("band") == i, arr)
    hot = (banded.where(F.col("n") > bucket_max)
           .select("phash", "centre", "band", "value", F.posexplode(subs).alias("sub", "sub_value"))
           .select("phash", "centre", _bucket(F.col("band"), F.col("value"), F.col("sub"), F.col("sub_value"))
                   .alias("bucket")))
    buckets = cold.unionByName(hot)
    a, b = buckets.alias("a"), buckets.alias("b")
    near = (a.join(b, (F.col("a.bucket") == F.col("b.bucket")) & (F.col("a.phash") < F.col("b.phash")))
            .where(F.bit_count(F.col("a.phash").bitwiseXOR(F.col("b.phash"))) <= k)
            .select(F.col("a.centre").alias("src"), F.col("b.centre").alias("dst")))
    return star.unionByName(near)


def perceptual_representatives(images: DataFrame, max_hamming: int, bucket_max: int) -> DataFrame:
    """images: image_id (distinct), phash, width, height. (image_id, rep) for every image in a
    group of two or more; rep is the group's largest image (ties: the smallest id)."""
    comps = connected_components(perceptual_edges(images, max_hamming, bucket_max))
    return component_representatives(comps, image_rank(images), "image_id")
