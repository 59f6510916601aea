"""Input A, then A+B under the same glob: only B's new work is done, and the tables are what
they must be over all of A+B (each document once, no image kept twice, every kept image's
top-k the two-level search over the stored tables, the Change Data Feed accounting for the
rerun's changes)."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLE_CONF, make_config


def unit_line(lines: list[str], table: str) -> tuple[int, int, int]:
    """(keys, already done, computed) from a stage's unit report line."""
    for line in lines:
        m = re.search(rf"{re.escape(table)}: (\d+) keys, (\d+) already done, (\d+) computed", line)
        if m:
            return int(m[1]), int(m[2]), int(m[3])
    raise AssertionError(f"no unit report for {table} in:\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def grown(spark, sample_lakehouse, tmp_path_factory):
    """A is the shared sample run (a copy of its finished lakehouse, its input files copied
    beside it: same bytes, new paths); B, new documents linking new images, then lands in the
    input folder and the pipeline runs again. Small units, so B's work spans several."""
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.corpora.sample_corpus import write_sample
    from realsyn.jobs.core.tables import TableStore
    sample, copy = sample_lakehouse
    root = tmp_path_factory.mktemp("incremental")
    copy(root / "work")
    shutil.copytree(sample / "obelics", root / "in")
    # B's images under A's file root (fetch.file_root is part of the fetch's fingerprint);
    # a folder of its own, so nothing the shared run reads changes.
    increment = write_sample(str(sample / f"increment-{root.name}"), n_docs=24, seed=11, n_images=16)["out"]
    docs = pq.read_table(f"{increment}/obelics/part-00000.parquet")
    cfg = make_config(root / "work", f"run.input={root}/in/*.parquet", f"fetch.file_root={sample}",
                      "units.fetch_rows=20", "units.sentence_rows=200", "units.embed_rows=50", files=[SAMPLE_CONF])
    store = TableStore(spark, cfg)
    before = {t: store.read(t).count() for t in ("bronze.documents", "silver.image_fetches", "silver.sentences",
                                                 "silver.image_embeddings", "silver.sentence_embeddings",
                                                 "gold.realsyn")}
    realsyn_version = store.version("gold.realsyn")
    before["retrieved"] = {r[0] for r in store.read("gold.retrievals").select("image_id").distinct().collect()}
    pq.write_table(docs, root / "in" / "part-b.parquet")
    lines: list[str] = []
    run_stages(cfg, say=lines.append)
    return store, cfg, before, realsyn_version, lines, docs


def test_each_document_once_and_no_image_kept_twice(grown):
    store, _, _, _, _, docs = grown
    bronze = store.read("bronze.documents")
    assert bronze.count() == bronze.select("doc_id").distinct().count() > 0
    kept = store.read("silver.images").where("status = 'kept'")
    assert kept.count() == kept.select("image_id").distinct().count() > 0
    fetches = store.read("silver.image_fetches")
    assert fetches.count() == fetches.select("url_id").distinct().count()


def test_only_the_new_urls_and_rows_are_fetched_and_embedded(grown):
    store, cfg, before, _, lines, _ = grown
    urls, reused, computed = unit_line(lines, "silver.image_fetches")
    assert reused == before["silver.image_fetches"] and computed == urls - reused > 0
    assert urls == store.read("silver.image_fetches").count()
    # only B's new documents are split; the occurrence counts are still those of all documents
    docs, reused, computed = unit_line(lines, "silver.document_sentences")
    assert reused == before["bronze.documents"] and 0 < computed == docs - reused
    assert docs == store.read("bronze.documents").count()
    from realsyn.jobs.lib.document_split import split_documents
    from realsyn.jobs.extract_sentences import sentence_pool
    resplit = sentence_pool(split_documents(store.read("bronze.documents"), cfg.get("sentences.splitter")))
    stored = store.read("silver.sentences").select("sentence_id", "text", "n_occurrences")
    assert resplit.count() == stored.count() and not resplit.exceptAll(stored).take(1)
    # sentences are filtered again only when new or repeated by B (their occurrence count changed)
    keys, reused, computed = unit_line(lines, "silver.sentences")
    assert 0 < reused <= before["silver.sentences"] and 0 < computed == keys - reused
    assert keys == store.read("silver.sentences").count()
    for table in ("silver.image_embeddings", "silver.sentence_embeddings"):
        keys, reused, computed = unit_line(lines, table)
        assert 0 < reused <= before[table] and computed == keys - reused, table
    # texts are made again only for images whose (R1, tags) changed: each row holds what it was made from
    keys, reused, computed = unit_line(lines, "gold.synthetic")
    assert computed == keys - reused and keys == store.read("gold.synthetic").count()
    assert any("stored centroids reused" in l or "fitting again" in l for l in lines), lines
    if any("stored centroids reused" in l for l in lines):   # the same centroids: retrieval is incremental
        from realsyn.jobs.lib.embedding_tables import kept_vectors
        kept = {r[0] for r in kept_vectors(store.read, "silver.image_embeddings", "image_id").select("image_id")
                .collect()}
        todo = [re.search(r"(\d+) image\(s\) to search \((\d+) new\)", l) for l in lines]
        todo = [m for m in todo if m]
        assert todo and int(todo[0][2]) == len(kept - before["retrieved"]) <= int(todo[0][1]), lines


def test_every_top_k_is_the_two_level_search_over_the_stored_tables(grown):
    from realsyn.jobs.lib.embedding_tables import kept_vectors
    store, cfg, _, _, _, _ = grown
    k, probes = cfg.get("retrieval.top_k"), cfg.get("retrieval.probes")
    cents = np.stack([np.frombuffer(r["centroid"], "<f4") for r in
                      store.read("gold.text_centroids").orderBy("cluster_id").collect()])
    sent_rows = store.read("gold.sentence_clusters").collect()
    sent_ids = np.array([r["sentence_id"] for r in sent_rows])
    sent_cluster = np.array([r["cluster_id"] for r in sent_rows])
    sents = np.stack([np.frombuffer(r["embedding"], "<f4") for r in sent_rows])
    imgs = kept_vectors(store.read, "silver.image_embeddings", "image_id").collect()
    assert len(imgs) > 0 and {r["dtype"] for r in imgs} == {"float32"}
    got: dict[str, list[str]] = {}
    for r in store.read("gold.retrievals").where("rank >= 1").orderBy("image_id", "rank").collect():
        got.setdefault(r["image_id"], []).append(r["sentence_id"])
    score_of = {sid: i for i, sid in enumerate(sent_ids)}
    for row in imgs:
        q = np.frombuffer(row["embedding"], "<f4")
        probed = np.argsort(-(cents @ q), kind="stable")[:probes]
        members = np.flatnonzero(np.isin(sent_cluster, probed))
        want = np.sort(sents[members] @ q)[::-1][:k]
        mine = got.get(row["image_id"], [])
        assert all(sent_cluster[score_of[s]] in probed for s in mine), row["image_id"]
        assert len(set(mine)) == len(mine) == len(want), row["image_id"]
        assert np.allclose([float(sents[score_of[s]] @ q) for s in mine], want, atol=1e-5), row["image_id"]


def test_the_change_data_feed_accounts_for_the_rerun(grown, spark):
    store, _, before, version, _, _ = grown
    changes = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", version + 1)
               .load(store.path("gold.realsyn")).groupBy("_change_type").count().collect())
    counts = {r["_change_type"]: r["count"] for r in changes}
    assert counts.get("insert", 0) > 0
    assert counts.get("update_preimage", 0) == counts.get("update_postimage", 0)
    after = store.read("gold.realsyn").count()
    assert before["gold.realsyn"] + counts.get("insert", 0) - counts.get("delete", 0) == after
