"""Balance increments (issue #41): with the image centroids kept, A then A+B gives the rows of a
recompute over A+B with the same centroids, rewrites only the rows of the clusters that
gained or lost a pair, and a run killed in the middle resumes to the same rows."""
from __future__ import annotations

import numpy as np
import pytest

from realsyn.jobs.balance import CENTROIDS, CLUSTERS, PAIRS, BalanceParams, full_clusters, read_centroids
from realsyn.jobs.pipeline import run_stages
from realsyn.jobs.core.stage import Context
from realsyn.jobs.core.tables import TableStore
from realsyn.schemas import spec
from tests.conftest import make_config

D = 64            # the tiny CLIP's width: the synthetic texts are encoded by it
COLUMNS = ("image_id", "cluster_id", "sim", "rank_in_cluster", "min_cap", "status", "reason")
WORDS = ["red", "blue", "green", "dog", "cat", "car", "tree", "house", "boat", "bird", "street", "field"]


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class World:
    """Planted image vectors around a few centers, a synthetic text per image."""

    def __init__(self, seed=3):
        self.rng = np.random.default_rng(seed)
        self.centers = unit(self.rng.standard_normal((6, D)))
        self.vectors: dict[str, np.ndarray] = {}
        self.texts: dict[str, str] = {}
        self.center: dict[str, int] = {}

    def add(self, n: int, centers, prefix: str) -> list[str]:
        ids = [f"{prefix}{i:04d}" for i in range(n)]
        which = self.rng.choice(centers, n)
        vecs = unit(self.centers[which] + 0.1 * self.rng.standard_normal((n, D)))
        for i, v, c in zip(ids, vecs, which):
            self.vectors[i] = v
            self.center[i] = int(c)
            self.texts[i] = " ".join(self.rng.choice(WORDS, 4))
        return ids

    def write(self, spark, store):
        emb = [(i, v.astype("<f4").tobytes(), "m@1", D, "float32", "kept", None) for i, v in self.vectors.items()]
        store.write("silver.image_embeddings", spark.createDataFrame(emb, spec("silver.image_embeddings").schema))
        syn = [(i, "r1", "a caption", ["tag"], t, {"llm": "tiny"}, "kept", None) for i, t in self.texts.items()]
        store.write("gold.synthetic", spark.createDataFrame(syn, spec("gold.synthetic").schema))


def config(tmp_path, *more):
    return make_config(tmp_path, "mlflow.enabled=false", "balance.images_per_cluster=8", "balance.caps=[2, 4, 8]",
                       "balance.sim_min=-0.2", "balance.sim_max=0.25", "kmeans.refit_drift=2.0",
                       "units.target_seconds=0", "units.embed_rows=100000", *more)   # one unit per run unless told


def rows(df) -> list[tuple]:
    return sorted((tuple(r[c] for c in COLUMNS) for r in df.collect()), key=lambda t: t[0])


def recomputed(store, cfg) -> list[tuple]:
    """gold.image_clusters over every stored pair, with the stored centroids."""
    levels = read_centroids(store.read, D)
    return rows(full_clusters(store, D, "float32", BalanceParams.from_config(cfg), levels))


def balance(cfg, lines=None):
    run_stages(cfg, ["balance"], say=(lines.append if lines is not None else lambda *_: None))


@pytest.fixture(scope="module")
def increment(spark, tmp_path_factory):
    """A, then A+B: new pairs in two regions, one pair gone and one whose text changed."""
    tmp = tmp_path_factory.mktemp("balance-increment")
    cfg = config(tmp)
    store = TableStore(spark, cfg)
    world = World()
    a = world.add(240, [0, 1, 2, 3, 4, 5], "a")
    world.write(spark, store)
    balance(cfg)
    centroids = store.version(CENTROIDS)
    before = {r["image_id"]: r for r in store.read(CLUSTERS).collect()}
    v_before = store.version(CLUSTERS)
    removed, changed = a[5], a[17]
    del world.vectors[removed], world.texts[removed]
    world.texts[changed] = "a completely different text about boats"
    new = world.add(30, [0], "b")
    world.write(spark, store)
    lines: list[str] = []
    balance(cfg, lines)
    return dict(tmp=tmp, cfg=cfg, store=store, world=world, before=before, v_before=v_before, lines=lines, new=new,
                removed=removed, changed=changed, centroids=centroids)


def test_an_increment_equals_a_recompute_with_the_same_centroids_and_rewrites_only_changed_clusters(spark,
                                                                                                   increment):
    cfg, store, before = increment["cfg"], increment["store"], increment["before"]
    lines = increment["lines"]
    assert any("stored image centroids reused" in line for line in lines), lines
    assert store.version(CENTROIDS) == increment["centroids"]                # not fitted again
    # Only the new and the changed texts were encoded; the removed and the replaced pairs deleted.
    assert any("269 keys, 238 already done, 31 computed" in line and "2 stale" in line for line in lines), lines
    # ... and only those pairs' vectors read and scored for gold.image_clusters.
    assert any("31 pair(s) scored, 1 left" in line for line in lines), lines
    after = rows(store.read(CLUSTERS))
    assert after == recomputed(store, cfg)
    ids = {r[0] for r in after}
    assert increment["removed"] not in ids and set(increment["new"]) <= ids
    by_id = {r[0]: r for r in after}
    assert by_id[increment["changed"]][2] != before[increment["changed"]]["sim"]   # the changed text scored again

    # The clusters that gained or lost a pair, from the rows themselves.
    touched = {by_id[i][1] for i in increment["new"]} | {before[increment["removed"]]["cluster_id"]}
    touched |= {before[increment["changed"]]["cluster_id"], by_id[increment["changed"]][1]}
    touched.discard(None)
    untouched = {r["cluster_id"] for r in before.values()} - touched - {None}
    assert untouched, "every cluster gained or lost a pair: the test shows nothing"
    # What the increment committed, from the change data feed: exactly the rows whose values
    # changed (and the pair that left), all in clusters that gained or lost a pair.
    feed = (spark.read.format("delta").option("readChangeFeed", "true")
            .option("startingVersion", increment["v_before"] + 1).load(store.path(CLUSTERS)).collect())
    written = {r["image_id"] for r in feed if r["_change_type"] in ("insert", "update_postimage")}
    deleted = {r["image_id"] for r in feed if r["_change_type"] == "delete"}
    differ = {i for i, r in by_id.items() if i not in before or tuple(before[i][c] for c in COLUMNS) != r}
    assert written == differ and deleted == {increment["removed"]}
    assert {r["cluster_id"] for r in feed} - {None} <= touched
    assert 0 < len(written) < len(after) and not {i for i in written if by_id[i][1] in untouched}
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY delta.`{store.path(CLUSTERS)}`")
           .where(f"version > {increment['v_before']}").collect()]
    assert "MERGE" in ops and not {"CREATE OR REPLACE TABLE AS SELECT", "REPLACE TABLE AS SELECT"} & set(ops), ops


class Killed(RuntimeError):
    pass


def test_a_run_killed_in_the_middle_of_an_increment_resumes_to_the_same_rows(spark, increment, monkeypatch):
    """Killed once after the first unit of new pairs, once between the two commits of the
    increment (the changed rows, the rows of a pair that left): the resumed run equals the
    recompute."""
    store, world = increment["store"], increment["world"]
    cfg = config(increment["tmp"], "units.embed_rows=8", "units.target_seconds=0")
    gone = next(i for i in sorted(world.texts) if world.center[i] == 5)   # far from the new pairs
    del world.vectors[gone], world.texts[gone]
    world.add(24, [2], "c")
    world.write(spark, store)
    append, upsert, delete_keys = Context.append, Context.upsert, Context.delete_keys
    appended, commits = [], []

    def append_once(self, name, df):
        if name == PAIRS and appended:
            raise Killed("killed after the first unit")
        appended.append(name)
        return append(self, name, df)

    def second_commit(write):
        def killed(self, name, *args):
            if name == CLUSTERS:
                if commits:
                    raise Killed("killed between the increment's two commits")
                commits.append(name)
            return write(self, name, *args)
        return killed

    with monkeypatch.context() as m:
        m.setattr(Context, "append", append_once)
        with pytest.raises(Killed):
            balance(cfg)
    assert appended == [PAIRS]
    with monkeypatch.context() as m:
        m.setattr(Context, "upsert", second_commit(upsert))
        m.setattr(Context, "delete_keys", second_commit(delete_keys))
        with pytest.raises(Killed):
            balance(cfg)
    assert commits == [CLUSTERS]
    # the changed rows are merged first: the pair that left is still stored
    assert gone in {r["image_id"] for r in store.read(CLUSTERS).select("image_id").collect()}
    lines: list[str] = []
    balance(cfg, lines)
    assert any("stored image centroids reused" in line for line in lines), lines
    after = rows(store.read(CLUSTERS))
    assert after == recomputed(store, cfg)
    assert {r[0] for r in after} == set(world.texts)
