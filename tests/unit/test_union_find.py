from realsyn.udfs.union_find import components, representatives


def test_chain_collapses_to_one_component():
    comp = components([("a", "b"), ("b", "c"), ("x", "y")])
    assert comp["a"] == comp["b"] == comp["c"] != comp["x"] == comp["y"]


def test_representative_has_best_rank_then_smallest_id():
    rep = representatives([("a", "b"), ("b", "c")], {"a": -10, "b": -50, "c": -50})
    assert set(rep.values()) == {"b"}


def test_semantic_pairs_find_exactly_the_planted_groups():
    import numpy as np

    from realsyn.udfs.semantic_dedup import pairs_above
    from realsyn.udfs.union_find import representatives
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 32))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    planted = {0: [40, 41], 5: [42], 9: [43, 44, 45]}       # copies of rows 0, 5, 9 with tiny noise
    extra = []
    for src, copies in planted.items():
        for _ in copies:
            v = base[src] + 0.01 * rng.standard_normal(32)
            extra.append(v / np.linalg.norm(v))
    vecs = np.vstack([base, np.array(extra)]).astype(np.float32)
    ids = [f"id{i:03d}" for i in range(len(vecs))]
    pairs = pairs_above(ids, vecs, 0.98, block=7)
    rep = representatives(pairs, {i: 0 for i in ids})
    groups = {}
    for member, r in rep.items():
        groups.setdefault(r, set()).add(member)
    expected = [{f"id{src:03d}", *(f"id{c:03d}" for c in copies)} for src, copies in planted.items()]
    assert sorted(map(sorted, groups.values())) == sorted(map(sorted, expected))
