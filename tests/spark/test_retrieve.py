"""Hierarchical retrieval against exact brute force on planted vectors."""
import re

import numpy as np
import pytest

from realsyn.jobs.pipeline import run_stages
from realsyn.jobs.core.tables import TableStore
from realsyn.schemas import spec
from tests.conftest import make_config

D = 16


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def planted(rng, n_sent=1200, n_img=150, giant=0):
    centers = unit(rng.standard_normal((12, D)))
    which = rng.integers(0, 12, n_sent)
    if giant:
        which[:giant] = 0          # one cluster holds most sentences
    sents = unit(centers[which] + 0.35 * rng.standard_normal((n_sent, D)))
    imgs = unit(centers[rng.integers(0, 12, n_img)] + 0.35 * rng.standard_normal((n_img, D)))
    return sents, imgs


def write_embeddings(spark, store, sents, imgs):
    rows = lambda prefix, vecs: [(f"{prefix}{i:05d}", v.astype("<f4").tobytes(), "m@1", D, "float32", "kept", None)  # noqa: E731
                                 for i, v in enumerate(vecs)]
    store.write("silver.sentence_embeddings",
                spark.createDataFrame(rows("s", sents), spec("silver.sentence_embeddings").schema))
    store.write("silver.image_embeddings",
                spark.createDataFrame(rows("i", imgs), spec("silver.image_embeddings").schema))
    for kind, key, prefix, n in (("sentence", "sentence_id", "s", len(sents)), ("image", "image_id", "i", len(imgs))):
        # no semantic duplicates: every vector kept
        store.write(f"silver.{kind}_dedup", spark.createDataFrame(
            [(f"{prefix}{i:05d}", None, "kept", None) for i in range(n)], spec(f"silver.{kind}_dedup").schema))


def exact(sents, imgs, k):
    sims = imgs @ sents.T
    return {f"i{i:05d}": [f"s{j:05d}" for j in np.argsort(-sims[i], kind="stable")[:k]] for i in range(len(imgs))}


def retrieved(store):
    got = {}
    for r in store.read("gold.retrievals").where("rank >= 1").orderBy("image_id", "rank").collect():
        got.setdefault(r["image_id"], []).append(r["sentence_id"])
    return got


def run(spark, tmp_path, sents, imgs, *overrides):
    cfg = make_config(tmp_path, "retrieval.sentences_per_cluster=100", "mlflow.enabled=false", *overrides)
    store = TableStore(spark, cfg)
    write_embeddings(spark, store, sents, imgs)
    result = run_stages(cfg, ["cluster", "retrieve"], say=lambda *_: None)
    return store, result


# Every probe giving the exact search is also shown by the giant-cluster test (6 of 6) and the
# two-level test (all groups, all probes), which check more besides.
@pytest.mark.slow
def test_all_probes_equal_exact_search(spark, tmp_path):
    sents, imgs = planted(np.random.default_rng(0))
    store, result = run(spark, tmp_path, sents, imgs, "retrieval.probes=12")
    assert retrieved(store) == exact(sents, imgs, 3)
    led = result.outcomes[-1].ledgers[0]
    assert led.rows_in == led.kept == len(imgs)


def test_one_probe_equals_a_single_process_two_level_search(spark, tmp_path):
    sents, imgs = planted(np.random.default_rng(1))
    store, _ = run(spark, tmp_path, sents, imgs, "retrieval.probes=1")
    cents = np.stack([np.frombuffer(r["centroid"], "<f4") for r in
                      store.read("gold.text_centroids").orderBy("cluster_id").collect()])
    sent_cluster, img_cluster = np.argmax(sents @ cents.T, axis=1), np.argmax(imgs @ cents.T, axis=1)
    expect = {}
    for i, c in enumerate(img_cluster):
        members = np.flatnonzero(sent_cluster == c)
        order = members[np.argsort(-(sents[members] @ imgs[i]), kind="stable")[:3]]
        expect[f"i{i:05d}"] = [f"s{j:05d}" for j in order]
    assert retrieved(store) == expect
    truth = exact(sents, imgs, 3)
    recall = np.mean([len(set(expect[i]) & set(t)) / 3 for i, t in truth.items()])
    assert 0 < recall <= 1
    scores = store.read("gold.retrievals").where("rank >= 1").orderBy("image_id", "rank").collect()
    for a, b in zip(scores, scores[1:]):
        if a["image_id"] == b["image_id"]:
            assert a["score"] >= b["score"]


def test_planted_giant_cluster_is_split_and_still_exact(spark, tmp_path):
    sents, imgs = planted(np.random.default_rng(2), giant=900)
    store, result = run(spark, tmp_path, sents, imgs, "retrieval.num_clusters=6", "retrieval.probes=6",
                        "retrieval.max_cluster_rows=100")
    assert retrieved(store) == exact(sents, imgs, 3)
    led = result.outcomes[-1].ledgers[0]
    assert led.rows_in == led.kept == len(imgs)


def test_rerun_is_deterministic(spark, tmp_path):
    sents, imgs = planted(np.random.default_rng(3))
    store, _ = run(spark, tmp_path, sents, imgs)
    first = store.read("gold.retrievals").orderBy("image_id", "rank").collect()
    centroids = store.read("gold.text_centroids").orderBy("cluster_id").collect()
    cfg = make_config(tmp_path, "retrieval.sentences_per_cluster=100", "mlflow.enabled=false")
    run_stages(cfg, ["cluster", "retrieve"], force=True, say=lambda *_: None)
    assert store.read("gold.text_centroids").orderBy("cluster_id").collect() == centroids
    assert store.read("gold.retrievals").orderBy("image_id", "rank").collect() == first


def test_min_score_floor_gives_reasons(spark, tmp_path):
    sents, imgs = planted(np.random.default_rng(4))
    store, result = run(spark, tmp_path, sents, imgs, "retrieval.min_score=0.999")
    led = result.outcomes[-1].ledgers[0]
    assert led.rejected.get("below_min_score", 0) > 0 and led.rows_in == led.kept + led.rejected_total


def two_level(store, sents, imgs, probes, k):
    """The two-level search from the stored centroids and assignment, in numpy."""
    cents = np.stack([np.frombuffer(r["centroid"], "<f4") for r in
                      store.read("gold.text_centroids").orderBy("cluster_id").collect()])
    assigned = {r["sentence_id"]: r["cluster_id"] for r in store.read("gold.sentence_clusters").collect()}
    sent_cluster = np.array([assigned[f"s{j:05d}"] for j in range(len(sents))])
    out = {}
    for i, q in enumerate(imgs):
        members = np.flatnonzero(np.isin(sent_cluster, np.argsort(-(cents @ q), kind="stable")[:probes]))
        order = members[np.argsort(-(sents[members] @ q), kind="stable")[:k]]
        out[f"i{i:05d}"] = [f"s{j:05d}" for j in order]
    return out


def test_new_sentences_in_one_region_search_again_only_the_images_that_probe_it(spark, tmp_path):
    rng = np.random.default_rng(5)
    sents, imgs = planted(rng)
    store, _ = run(spark, tmp_path, sents, imgs, "retrieval.probes=2")
    assert retrieved(store) == two_level(store, sents, imgs, 2, 3)
    region = sents[0]
    more_sents = np.concatenate([sents, unit(region + 0.05 * rng.standard_normal((40, D)))])
    more_imgs = np.concatenate([imgs, unit(imgs[:10] + 0.05 * rng.standard_normal((10, D)))])
    write_embeddings(spark, store, more_sents, more_imgs)
    lines: list[str] = []
    cfg = make_config(tmp_path, "retrieval.sentences_per_cluster=100", "mlflow.enabled=false", "retrieval.probes=2")
    run_stages(cfg, ["cluster", "retrieve"], say=lines.append)
    assert any("stored centroids reused" in line for line in lines), lines
    searched = [line for line in lines if "image(s) to search" in line]
    assert searched, lines
    n_search, n_new = map(int, re.search(r"(\d+) image\(s\) to search \((\d+) new\)", searched[0]).groups())
    assert n_new == 10 and n_new < n_search < len(more_imgs), searched
    assert retrieved(store) == two_level(store, more_sents, more_imgs, 2, 3)
    assert store.read("gold.retrievals").select("image_id").distinct().count() == len(more_imgs)


def stored_levels(store):
    fine = store.read("gold.text_centroids").orderBy("cluster_id").collect()
    coarse = store.read("gold.text_coarse_centroids").orderBy("coarse_id").collect()
    return (np.stack([np.frombuffer(r["centroid"], "<f4") for r in fine]),
            np.stack([np.frombuffer(r["centroid"], "<f4") for r in coarse]),
            np.array([r["coarse_id"] for r in fine]))


def test_two_levels_route_inside_the_nearest_group_and_all_groups_give_exact(spark, tmp_path):
    sents, imgs = planted(np.random.default_rng(5))
    # K = 12 clusters from 4 up: 4 coarse groups of about 3 clusters each.
    store, _ = run(spark, tmp_path / "one", sents, imgs, "retrieval.coarse_min_clusters=4", "retrieval.probes=1",
                   "retrieval.coarse_probes=1")
    fine, coarse, group = stored_levels(store)
    assert len(coarse) == 4 and set(group) == set(range(4))

    def cluster_of(v):
        g = np.argmax(v @ coarse.T, axis=1)
        return np.argmax(np.where(group[None, :] == g[:, None], v @ fine.T, -np.inf), axis=1)
    assigned = {r["sentence_id"]: r["cluster_id"] for r in store.read("gold.sentence_clusters").collect()}
    sent_cluster = cluster_of(sents)
    assert [assigned[f"s{j:05d}"] for j in range(len(sents))] == sent_cluster.tolist()
    expect = {}
    for i, c in enumerate(cluster_of(imgs)):
        members = np.flatnonzero(sent_cluster == c)
        expect[f"i{i:05d}"] = [f"s{j:05d}" for j in members[np.argsort(-(sents[members] @ imgs[i]), kind="stable")[:3]]]
    assert retrieved(store) == expect
    # A rerun reads both levels back and reuses them: same clusters, same top-k.
    lines: list[str] = []
    cfg = make_config(tmp_path / "one", "retrieval.sentences_per_cluster=100", "mlflow.enabled=false",
                      "retrieval.coarse_min_clusters=4", "retrieval.probes=1", "retrieval.coarse_probes=1")
    run_stages(cfg, ["cluster", "retrieve"], force=True, say=lines.append)
    assert any("stored centroids reused" in line for line in lines), lines
    assert retrieved(store) == expect

    store, _ = run(spark, tmp_path / "all", sents, imgs, "retrieval.coarse_min_clusters=4", "retrieval.probes=12",
                   "retrieval.coarse_probes=4")
    assert retrieved(store) == exact(sents, imgs, 3)
