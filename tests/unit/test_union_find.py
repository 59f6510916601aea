from realsyn.udfs.union_find import components, representatives


def test_chain_collapses_to_one_component():
    comp = components([("a", "b"), ("b", "c"), ("x", "y")])
    assert comp["a"] == comp["b"] == comp["c"] != comp["x"] == comp["y"]


def test_representative_has_best_rank_then_smallest_id():
    rep = representatives([("a", "b"), ("b", "c")], {"a": -10, "b": -50, "c": -50})
    assert set(rep.values()) == {"b"}
