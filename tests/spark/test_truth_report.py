"""The card's figures against a world's truth, computed by the executors: hand-made rows
whose precision is known."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def spec(*groups):
    return json.dumps({"background": "plain", "groups": [
        {"kind": k, "colour": c, "size": "small", "count": 1, "position": "left"} for c, k in groups]})


def test_precision_of_each_text_and_of_the_neighbouring_text(spark, tmp_path):
    from realsyn.jobs.world.truth_report import truth_report
    pq.write_table(pa.Table.from_pylist([
        {"image": "a.png", "spec": spec(("red", "circle")), "role": "original"},
        {"image": "b.png", "spec": spec(("blue", "square"), ("green", "star")), "role": "original"}]),
        tmp_path / "truth.parquet")
    url = "file:///elsewhere/images/{}".format
    gold = spark.createDataFrame([
        (url("a.png"), "Two red circles sit on the left.", "A blue square.", None, "noise"),
        (url("b.png"), "A blue square and a red star.", None, None, None),
        (url("not-in-truth.png"), "A red circle.", "A red circle.", "A red circle.", "A red circle."),
    ], "raw_image_url string, text1 string, text2 string, text3 string, syn_text string")
    docs = spark.createDataFrame([
        ("d2", [None, url("a.png"), None], ["Intro.", None, "A red circle here."]),
        ("d3", [url("b.png"), None], [None, "Rain soaked the town."]),
        ("d9", [url("a.png"), None], [None, "A later page's blue star."]),   # a: d2, the smaller doc_id
    ], "doc_id string, images array<string>, texts array<string>")
    got = truth_report(gold, docs, str(tmp_path))
    assert got["text1"] == {"pairs": 2, "precision": pytest.approx(0.75), "names_a_concept": 1.0}
    assert got["text2"] == {"pairs": 1, "precision": 0.0, "names_a_concept": 1.0}
    assert got["text3"]["pairs"] == 0 and got["text3"]["precision"] is None
    assert got["text1-3"] == {"pairs": 3, "precision": pytest.approx(0.5), "names_a_concept": 1.0}
    assert got["syn_text"] == {"pairs": 2, "precision": 0.0, "names_a_concept": 0.0}
    assert got["neighbouring_text"] == {"pairs": 2, "precision": 0.5, "names_a_concept": 0.5}


def test_a_folder_without_truth_is_a_clear_error(spark, tmp_path):
    from realsyn.jobs.world.truth_report import truth_report
    with pytest.raises(FileNotFoundError, match="not a world folder"):
        truth_report(None, None, str(tmp_path))


def test_coverage_of_the_gold_rows_with_a_truth(spark, tmp_path):
    from realsyn.jobs.world.truth_report import coverage_report
    pq.write_table(pa.Table.from_pylist(
        [{"image": f"r{i}.png", "spec": spec(("red", "circle")), "role": "original"} for i in range(4)]
        + [{"image": "b.png", "spec": spec(("blue", "square"), ("green", "star")), "role": "original"}]),
        tmp_path / "truth.parquet")
    url = "file:///elsewhere/images/{}".format
    gold = spark.createDataFrame(
        [(f"i{i}", url(f"r{i}.png"), 0, 2 if i == 0 else None) for i in range(4)]
        + [("i8", url("b.png"), 1, 2), ("i9", url("not-in-truth.png"), 1, 2)],
        "image_id string, raw_image_url string, cluster_id int, min_cap int")
    got = coverage_report(gold, str(tmp_path), caps=(2,), seed=1)
    assert got["pool"]["pairs"] == 5 and got["pool"]["covered"] == 3
    assert got["reference"]["head"] == "red circle" and got["pool"]["head_share"] == 0.8
    assert got["subsets"]["2"]["subset"] == pytest.approx({"pairs": 2, "entropy": 1.0, "head_share": 0.5,
                                                           "covered": 3, "rare_share": 0.5})
    assert got["purity"] == 1.0


def test_semantic_sentence_dedup_against_the_truth(spark):
    from realsyn.jobs.world.truth_report import sentence_dedup_report
    sentences = spark.createDataFrame([
        ("s1", "A red circle sits on the left against a plain background."),
        ("s2", "One red circle rests on the left side of a plain background."),      # s1's scene again
        ("s3", "A red circle sits on the right against a plain background."),        # another scene
        ("s4", "The morning fog covered the harbour town before noon."),             # prose
        ("s5", "Heavy rain soaked the quiet valley on Tuesday."),
    ], "sentence_id string, text string")
    neighbours = spark.createDataFrame([
        ("s1", None, None), ("s2", "s1", 0.99), ("s3", "s1", 0.96), ("s4", None, None), ("s5", "s4", 0.92),
    ], "sentence_id string, neighbour string, max_sim double")
    dedup = spark.createDataFrame([
        ("s1", None, "kept"), ("s2", "s1", "rejected"), ("s3", "s1", "rejected"), ("s4", None, "kept"),
        ("s5", "s4", "rejected"),
    ], "sentence_id string, duplicate_of string, status string")
    got = sentence_dedup_report(sentences, neighbours, dedup)
    assert got["scored"] == 5
    assert got["removed"]["n"] == 3 and all(got["removed"][k] == 1 / 3 for k in
                                            ("same_scene", "different_scene", "other_prose"))
    curve = {r["threshold"]: r for r in got["curve"]}
    assert (curve[0.9]["n"], curve[0.95]["n"], curve[0.97]["n"], curve[0.999]["n"]) == (3, 2, 1, 0)
    assert curve[0.97]["same_scene"] == 1.0 and curve[0.95]["different_scene"] == 0.5


def test_sentence_filters_against_the_truth(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from realsyn.jobs.world.truth_report import sentence_filter_report
    desc, alt = "A red circle sits on the left against a plain background.", "A blue star floats on the right."
    pq.write_table(pa.Table.from_pylist([{"sentence": desc, "placement": "elsewhere"},
                                         {"sentence": alt, "placement": "alt_text"}]), tmp_path / "truth_sentences.parquet")
    pq.write_table(pa.Table.from_pylist([{"sentence": "Rain town the quiet soaked.", "kind": "shuffled_words"},
                                         {"sentence": "Click here.", "kind": "too_few_words"}]),
                   tmp_path / "junk_sentences.parquet")
    sentences = spark.createDataFrame([
        (desc, "kept", None), ("Rain town the quiet soaked.", "rejected", "high_perplexity"),
        ("Click here.", "rejected", "too_few_words"), ("The market opens at nine.", "kept", None),
        ("The bakery sells bread.", "rejected", None),      # rejected without a reason: counted, not kept
    ], "text string, status string, reason string")
    got = sentence_filter_report(sentences, str(tmp_path))
    rows = {r["class"]: r for r in got["classes"]}
    assert rows["description"]["planted"] == 1 and rows["description"]["kept"] == 1
    assert rows["shuffled_words"]["removed_by"] == {"perplexity": 1}
    assert rows["page prose"]["found"] == 2 and rows["page prose"]["removed_by"] == {"other": 1}
    assert got["descriptions_kept"] == 1.0 and got["junk_removed"] == 1.0 and got["junk_removed_by_perplexity"] == 0.5
