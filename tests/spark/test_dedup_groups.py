"""Duplicate groups on the executors: connected components and pHash edges, checked against
scipy's connected components over brute-force pairs."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from realsyn.jobs.lib.connected_components import connected_components
from realsyn.jobs.lib.perceptual_dedup import band_layout, perceptual_edges, perceptual_representatives


def oracle_groups(n: int, pairs: list[tuple[int, int]]) -> set[frozenset[int]]:
    """Groups of two or more vertices, by scipy."""
    if not pairs:
        return set()
    a, b = np.array(pairs).T
    _, labels = scipy_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    groups: dict[int, set[int]] = {}
    for v, lab in enumerate(labels):
        groups.setdefault(lab, set()).add(v)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def spark_groups(comps) -> set[frozenset[int]]:
    groups: dict[str, set[int]] = {}
    for r in comps.collect():
        groups.setdefault(r["component"], set()).add(int(r["vertex"][1:]))
    return {frozenset(g) for g in groups.values()}


def vid(i: int) -> str:
    return f"v{i:05d}"


def test_components_match_scipy_on_chains_stars_and_random_edges(spark):
    rng = np.random.default_rng(3)
    pairs = [(i, i + 1) for i in range(0, 300)]                  # a long chain: diameter 300
    pairs += [(400, j) for j in range(401, 600)]                 # a star
    pairs += [(int(x), int(y)) for x, y in rng.integers(700, 2000, size=(900, 2))]  # random, with repeats and loops
    pairs += [(2100, 2100)]                                      # a self-loop alone is no group
    edges = spark.createDataFrame([(vid(a), vid(b)) for a, b in pairs], "src string, dst string")
    comps = connected_components(edges)
    expected = oracle_groups(2200, [(a, b) for a, b in pairs if a != b])
    assert spark_groups(comps) == expected
    # the component label is the smallest vertex of the component
    for r in comps.collect():
        assert r["component"] <= r["vertex"]


def test_no_edges_gives_no_components(spark):
    edges = spark.createDataFrame([], "src string, dst string")
    comps = connected_components(edges)
    assert comps.count() == 0
    assert comps.columns == ["vertex", "component"]
    # Self-loops and nothing else: still no component, the same shape.
    loops = spark.createDataFrame([("a", "a"), ("b", "b")], "src string, dst string")
    assert connected_components(loops).count() == 0


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor(a, b).view(np.uint64)
    return np.array([bin(int(v)).count("1") for v in x.ravel()]).reshape(x.shape)


def planted_hashes(rng) -> np.ndarray:
    """Random hashes, near groups (a few flipped bits, chained), a hot group of one exact hash,
    and a hot group of distinct hashes sharing their low bits (one band bucket)."""
    base = rng.integers(0, 2**64 - 1, size=150, dtype=np.uint64)
    out = list(base)
    for i in range(20):                                   # near copies, 1-3 bits off
        for _ in range(3):
            flips = rng.choice(64, size=rng.integers(1, 4), replace=False)
            out.append(base[i] ^ np.uint64(sum(1 << int(f) for f in flips)))
    out += [base[30]] * 60                                # one exact hash, many images
    for _ in range(80):                                   # all share band 0 (the low 13 bits)
        out.append((rng.integers(0, 2**51, dtype=np.uint64) << np.uint64(13)) | np.uint64(0x1FFF))
    return np.array(out, dtype=np.uint64).view(np.int64)


@pytest.mark.parametrize("bucket_max", [1000, 4])   # 4: hot buckets take the second banding level
def test_perceptual_groups_equal_brute_force(spark, bucket_max):
    rng = np.random.default_rng(11)
    hashes = planted_hashes(rng)
    n, k = len(hashes), 4
    dist = hamming(hashes[:, None], hashes[None, :])
    pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(dist <= k)) if i < j]
    rows = [(vid(i), int(h)) for i, h in enumerate(hashes)]
    images = spark.createDataFrame(rows, "image_id string, phash long")
    comps = connected_components(perceptual_edges(images, k, bucket_max))
    assert spark_groups(comps) == oracle_groups(n, pairs)


def test_largest_image_represents_its_group(spark):
    rows = [("a", 5, 10, 10), ("b", 5 ^ 1, 30, 30), ("c", 5 ^ 3, 20, 20), ("d", 0x7FFFFFFF00000000, 50, 50)]
    images = spark.createDataFrame(rows, "image_id string, phash long, width int, height int")
    reps = {r["image_id"]: r["rep"] for r in perceptual_representatives(images, 4, 1000).collect()}
    assert reps == {"a": "b", "b": "b", "c": "b"}   # d is alone: not in any group


def test_band_layout_covers_every_bit_once():
    for width, n in ((64, 5), (51, 5), (64, 1), (7, 7)):
        layout = band_layout(width, n)
        assert sum(w for _, w in layout) == width
        assert [s for s, _ in layout] == [sum(w for _, w in layout[:i]) for i in range(n)]


def test_semantic_dedup_rejects_exactly_the_planted_copies_at_any_threshold(spark):
    from realsyn.jobs.lib.keep_rank import id_rank
    from realsyn.jobs.semantic_dedup import verdicts
    from realsyn.jobs.semantic_neighbours import SemanticNeighboursParams, neighbours
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    copies = {3: 2, 50: 1, 120: 3}
    vecs, ids = list(base), [f"s{i:04d}" for i in range(300)]
    for src, n in copies.items():
        for j in range(n):
            v = base[src] + 0.005 * rng.standard_normal(16).astype(np.float32)
            vecs.append(v / np.linalg.norm(v))
            ids.append(f"s{src:04d}_{j}")
    rows = [(i, v.astype("<f4").tobytes(), 16, "float32", "kept") for i, v in zip(ids, vecs)]
    rows.append(("s9999", None, None, None, "rejected"))         # not encoded: never scored
    emb = spark.createDataFrame(rows, "sentence_id string, embedding binary, dim int, dtype string, status string")
    scores = neighbours(spark, emb, "sentence_id", id_rank(emb, "sentence_id"),
                        SemanticNeighboursParams(points_per_cluster=30, group_rows=100, kmeans_sample=10_000, kmeans_iters=10, seed=42)).localCheckpoint()
    assert scores.count() == len(vecs)
    out = {r["sentence_id"]: r for r in verdicts(scores, "sentence_id", 0.98).collect()}
    dropped = {k for k, r in out.items() if r["status"] == "rejected"}
    assert dropped == {f"s{src:04d}_{j}" for src, n in copies.items() for j in range(n)}
    assert all(out[f"s{src:04d}_{j}"]["duplicate_of"] == f"s{src:04d}" for src, n in copies.items() for j in range(n))
    # A looser threshold is one filter over the same scores: more rejected, never fewer.
    looser = {r["sentence_id"] for r in verdicts(scores, "sentence_id", 0.3).collect() if r["status"] == "rejected"}
    assert dropped < looser


def apply_upsert(stored, changes):
    return stored.join(changes.select("image_id"), "image_id", "left_anti").unionByName(changes)


# 4 takes both banding levels (hot buckets the second, the rest the first); 1000 only the first.
@pytest.mark.parametrize("bucket_max", [pytest.param(1000, marks=pytest.mark.slow), 4])
def test_increments_give_the_groups_of_a_full_recompute(spark, bucket_max):
    """A, then A+B1, then A+B1+B2: every group and representative as computed over all at once,
    and an increment never rewrites a row whose group did not change."""
    from realsyn.jobs.lib.perceptual_groups import COLUMNS, full_groups, group_changes, needs_full
    rng = np.random.default_rng(5)
    hashes = list(planted_hashes(rng))
    bridge = int(rng.integers(0, 2**62))
    hashes += [bridge ^ 0b111, bridge ^ (0b111 << 60), bridge]   # two far groups, then the image joining them
    ranks = rng.integers(-5000, -1, size=len(hashes))
    ranks[[7, 30]] = ranks[8]                                    # ties: the smallest id wins
    rows = [(vid(i), int(h), int(r)) for i, (h, r) in enumerate(zip(hashes, ranks))]
    order = rng.permutation(len(rows) - 1)                      # the bridge (last) always comes late
    a = [rows[i] for i in order[:300]]
    b1 = [rows[i] for i in order[300:380]] + [rows[-1]]
    b2 = [rows[i] for i in order[380:]]
    schema = "image_id string, phash long, rank long"
    stored = full_groups(spark.createDataFrame(a, schema), 4, bucket_max).localCheckpoint()
    for step in (a + b1, a + b1 + b2):
        cands = spark.createDataFrame(step, schema)
        assert not needs_full(stored, cands)
        changes = group_changes(stored, cands, 4, bucket_max).localCheckpoint()
        before = {r["image_id"]: r for r in stored.collect()}
        for r in changes.collect():                               # only new or regrouped rows
            assert r["image_id"] not in before or tuple(before[r["image_id"]]) != tuple(r[c] for c in COLUMNS)
        stored = apply_upsert(stored, changes).localCheckpoint()
        full = full_groups(cands, 4, bucket_max)
        key = lambda df: sorted(tuple(r[c] for c in COLUMNS) for r in df.collect())   # noqa: E731
        assert key(stored) == key(full)
    merged = {r["image_id"]: r["component"] for r in stored.collect()}
    n = len(rows)
    assert merged[vid(n - 3)] == merged[vid(n - 2)] == merged[vid(n - 1)]
    gone = spark.createDataFrame(a[1:] + b1 + b2, schema)         # one candidate left: groups may split
    assert needs_full(stored, gone)


def test_semantic_scores_of_an_increment_equal_a_rescore_with_the_kept_centroids(spark):
    """Fit on A; then A+B updated from the stored scores equals every row scored from nothing
    with the same centroids (the fit itself is reproduced by them), and so do the verdicts."""
    from realsyn.jobs.semantic_dedup import verdicts
    from realsyn.jobs.semantic_neighbours import (SemanticNeighboursParams, fit_scores, needs_rescore, new_scores,
                                                  ranked)
    from realsyn.udfs.semantic_dedup import NEIGHBOURS_DDL
    rng = np.random.default_rng(7)
    base = rng.standard_normal((300, 16)).astype(np.float32)
    vecs, ids = list(base / np.linalg.norm(base, axis=1, keepdims=True)), [f"s{i:04d}" for i in range(300)]
    for src in range(0, 300, 7):                                  # near copies, some landing in A, some in B
        v = vecs[src] + 0.01 * rng.standard_normal(16).astype(np.float32)
        vecs.append(v / np.linalg.norm(v))
        ids.append(f"c{src:04d}")
    rank = rng.integers(-1000, 0, size=len(ids))
    rows = [(i, v.astype("<f4").tobytes(), 16, "float32", "kept") for i, v in zip(ids, vecs)]
    in_a = rng.random(len(rows)) < 0.7
    schema = "sentence_id string, embedding binary, dim int, dtype string, status string"
    emb_a = spark.createDataFrame([r for r, a in zip(rows, in_a) if a], schema)
    emb_ab = spark.createDataFrame(rows, schema)
    ranks = spark.createDataFrame([(i, int(r)) for i, r in zip(ids, rank)], "sentence_id string, rank long")
    p = SemanticNeighboursParams(points_per_cluster=30, group_rows=100, kmeans_sample=10_000, kmeans_iters=10, seed=42)
    stored, centroids = fit_scores(spark, emb_a, "sentence_id", ranks, p)
    stored, centroids = stored.localCheckpoint(), centroids.localCheckpoint()
    assert centroids.where("dedup_subcluster >= 0").count() > 0    # the groups were split: fine centroids kept
    nothing = spark.createDataFrame([], NEIGHBOURS_DDL.format(key="sentence_id"))
    cols = ["sentence_id", "dedup_cluster", "dedup_subcluster", "rank", "neighbour"]

    def rows_of(df):
        return sorted((tuple(r[c] for c in cols), r["max_sim"]) for r in df.collect())

    def same(a, b):
        assert [x for x, _ in a] == [x for x, _ in b]
        assert all((s is None and t is None) or abs(s - t) < 1e-5 for (_, s), (_, t) in zip(a, b))

    va, vab = ranked(emb_a, "sentence_id", ranks), ranked(emb_ab, "sentence_id", ranks)
    same(rows_of(stored), rows_of(new_scores(nothing, va, centroids, "sentence_id", 16, "float32")))
    assert not needs_rescore(stored, vab, "sentence_id")
    changes = new_scores(stored, vab, centroids, "sentence_id", 16, "float32").localCheckpoint()
    n_new = int((~in_a).sum())
    assert n_new < changes.count() < len(rows)                      # new rows, and some old rows re-pointed
    updated = stored.join(changes.select("sentence_id"), "sentence_id", "left_anti").unionByName(changes)
    full = new_scores(nothing, vab, centroids, "sentence_id", 16, "float32")
    same(rows_of(updated), rows_of(full))
    verdict = lambda df: sorted(tuple(r) for r in verdicts(df, "sentence_id", 0.98).collect())   # noqa: E731
    assert verdict(updated) == verdict(full)
    assert any(r[2] == "rejected" for r in verdict(full))
    assert needs_rescore(stored, ranked(emb_ab.where("sentence_id != 's0001'"), "sentence_id", ranks), "sentence_id")
