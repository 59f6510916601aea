"""Extraction stages on the sample corpus and on hand-made edge cases."""
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from realsyn.jobs.pipeline import run_stages
from realsyn.jobs.core.tables import TableStore
from tests.conftest import make_config

SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                    ("metadata", pa.string()), ("general_metadata", pa.string())])


@pytest.fixture(scope="module")
def extracted(sample_pipeline):
    return sample_pipeline


def by_file(store):
    rows = store.read("silver.images").select(F.regexp_extract("url", r"[^/]+$", 0).alias("f"), "status",
                                              "reason", "duplicate_of").collect()
    return {r["f"]: r for r in rows}


def test_image_ledger_balances(extracted):
    _, result, store = extracted
    led = {l.name: l for o in result.outcomes for l in o.ledgers}["images"]
    assert led.rows_in == led.kept + led.rejected_total
    assert led.kept == store.read("silver.images").where("status = 'kept'").count() > 0


def test_every_bad_image_has_its_reason(extracted):
    _, _, store = extracted
    files = by_file(store)
    expected = {"corrupt.jpg": {"corrupt", "not_an_image", "truncated"}, "truncated.jpg": {"truncated", "corrupt"},
                "empty.png": {"empty"}, "not_an_image.jpg": {"not_an_image"}, "bomb.png": {"decompression_bomb"},
                "passwd": {"outside_file_root"}, "a.jpg": {"scheme_not_allowed"}, "x.jpg": {"blocked_address"}}
    for name, reasons in expected.items():
        if name in files:
            assert files[name]["reason"] in reasons, (name, files[name]["reason"])


def test_quality_filter_edges(extracted):
    _, _, store = extracted
    dims = {(r["width"], r["height"]): r["reason"] for r in
            store.read("silver.images").where("width IS NOT NULL").select("width", "height", "reason").collect()}
    assert dims.get((99, 300)) == "too_small"
    assert dims.get((100, 100)) in (None, "duplicate_exact", "duplicate_perceptual")
    assert dims.get((300, 100)) in (None, "duplicate_exact", "duplicate_perceptual")     # ratio exactly 3 is kept
    assert dims.get((301, 100)) == "bad_aspect_ratio"
    assert dims.get((100, 301)) == "bad_aspect_ratio"


def test_duplicates_collapse(extracted):
    _, _, store = extracted
    images = store.read("silver.images")
    kept = images.where("status = 'kept'")
    assert kept.count() == kept.select("image_id").distinct().count()
    assert images.where("reason = 'duplicate_exact'").count() > 0
    assert images.where("reason = 'duplicate_perceptual'").count() > 0
    files = by_file(store)
    copy = files.get("img_0000_copy.png") or files.get("img_0000_copy.jpg")
    orig = files.get("img_0000.png") or files.get("img_0000.jpg")
    if copy and orig:
        assert {copy["reason"], orig["reason"]} & {"duplicate_exact"}


def test_sentence_ledger_and_reasons(extracted):
    _, result, store = extracted
    led = {l.name: l for o in result.outcomes for l in o.ledgers}["sentences"]
    assert led.rows_in == led.kept + led.rejected_total
    for reason in ("emoji", "url", "too_few_words", "too_many_words", "duplicate_sentence", "low_entropy"):
        assert led.rejected.get(reason, 0) > 0, reason
    s = store.read("silver.sentences")
    assert s.count() == s.select("sentence_id").distinct().count()


def test_rerun_gives_identical_tables(spark, extracted):
    cfg, _, store = extracted
    before = store.read("silver.sentences").orderBy("sentence_id").collect()
    run_stages(cfg, ["extract_sentences"], force=True, say=lambda *_: None)
    assert store.read("silver.sentences").orderBy("sentence_id").collect() == before


def test_word_count_edges(spark, tmp_path):
    words = lambda n: " ".join(["walk"] * (n - 1)) + " home."  # noqa: E731
    texts = [f"{words(2)} {words(3)[0].upper()}{words(3)[1:]}", words(81).capitalize(), words(82).capitalize()]
    rows = [{"images": [None], "texts": [t], "metadata": "[null]", "general_metadata": json.dumps({"url": "u"})}
            for t in texts]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp_path / "in" / "w.parquet")
    cfg = make_config(tmp_path, f"run.input={tmp_path}/in", "sentences.entropy_min=0.0",
                      "sentences.perplexity_filter=false")
    run_stages(cfg, ["ingest", "extract_sentences"], say=lambda *_: None)
    got = {r["n_words"]: r["reason"] for r in TableStore(spark, cfg).read("silver.sentences").collect()}
    assert got == {2: "too_few_words", 3: None, 81: None, 82: "too_many_words"}


def stage_run(cfg, pipeline_run: str, stage: str):
    """The MLflow child run of one stage in one pipeline run."""
    import mlflow
    from realsyn.jobs.core.tracking import Tracker
    tracker = Tracker(cfg)
    client = mlflow.MlflowClient(tracker.uri)
    exp = tracker.mlflow.get_experiment_by_name(cfg.get("mlflow.experiment"))
    parent = client.search_runs([exp.experiment_id], f"tags.`realsyn.run` = '{pipeline_run}'")[0]
    runs = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                              f"and tags.`mlflow.runName` = '{stage}'")
    assert len(runs) == 1, (stage, runs)
    return client, runs[0]


def test_funnel_and_reason_counts_are_logged(extracted, tmp_path):
    from PIL import Image
    cfg, result, _ = extracted
    for stage, name in (("extract_images", "images"), ("extract_sentences", "sentences")):
        client, run = stage_run(cfg, result.run_id, stage)
        led = {l.name: l for o in result.outcomes for l in o.ledgers}[name]
        for reason, n in led.rejected.items():
            assert run.data.metrics[f"{name}.rejected.{reason}"] == n
        assert {a.path for a in client.list_artifacts(run.info.run_id, "funnel")} == {
            f"funnel/{name}.png", f"funnel/{name}.json"}
        local = client.download_artifacts(run.info.run_id, "funnel", str(tmp_path / stage))
        with Image.open(f"{local}/{name}.png") as img:
            assert img.format == "PNG"
        steps = json.loads(open(f"{local}/{name}.json").read())
        assert steps[0]["remaining"] == led.rows_in and steps[-1]["remaining"] == led.kept
        assert sum(sum(s["removed"].values()) for s in steps) == led.rejected_total
    _, run = stage_run(cfg, result.run_id, "extract_sentences")
    # The sample configures no spaCy pipeline: the CAT filter is recorded as not run.
    assert run.data.params["filter_ran.complexity"] == "False"
    assert "complexity + action (not run)" in {s["label"] for s in steps}


def test_complexity_filter_with_a_spacy_pipeline(spark, tmp_path):
    pytest.importorskip("spacy")
    from tests.unit.test_complexity import GOLD, build_pipeline, sentence
    model = build_pipeline(tmp_path / "cat_pipeline")
    texts = [sentence(g[0]) for g in GOLD] + ["Two words.", "A dog runs on the beach."]
    rows = [{"images": [None] * len(texts), "texts": texts, "metadata": json.dumps([None] * len(texts)),
             "general_metadata": json.dumps({"url": "u"})}]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp_path / "in" / "c.parquet")
    cfg = make_config(tmp_path, f"run.input={tmp_path}/in", "sentences.entropy_min=0.0",
                      "sentences.perplexity_filter=false", f"sentences.complexity_model={model}",
                      "sentences.complexity_batch_size=3")
    result = run_stages(cfg, ["ingest", "extract_sentences"], say=lambda *_: None)
    got = {r["text"]: (r["complexity"], r["has_action"], r["reason"])
           for r in TableStore(spark, cfg).read("silver.sentences").collect()}
    expected = {sentence(g[0]): (g[4], str(g[5]).lower(),
                                 "low_complexity" if g[4] < 1 else None if g[5] else "no_action") for g in GOLD}
    expected["Two words."] = (None, None, "too_few_words")       # rejected before parsing
    assert got == expected
    led = result.outcomes[-1].ledgers[0]
    assert led.rejected == {"low_complexity": 3, "no_action": 3, "too_few_words": 1, "duplicate_sentence": 1}
    _, run = stage_run(cfg, result.run_id, "extract_sentences")
    assert run.data.params["filter_ran.complexity"] == "True"


def test_entropy_filter_keeps_real_prose_and_rejects_repetition(spark, tmp_path):
    """debian-handbook's English pages (installed by .ci/run): the entropy filter rejects almost
    none of the sentences that reach it, of any length, while planted repetitions go."""
    from realsyn.jobs.corpora.doc_corpus import HANDBOOK_ROOT, write_corpus
    if not os.path.isdir(HANDBOOK_ROOT):
        pytest.skip(f"{HANDBOOK_ROOT} missing: apt-get install debian-handbook (.ci/run does)")
    write_corpus(str(tmp_path), ["en-US"])
    planted = ["buy now buy now buy now buy now buy now buy now.", "Ha ha ha ha ha ha ha ha ha ha."]
    rows = [{"images": [None] * 2, "texts": planted, "metadata": "[null, null]",
             "general_metadata": json.dumps({"url": "planted"})}]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp_path / "obelics" / "planted.parquet")
    cfg = make_config(tmp_path, f"run.input={tmp_path}/obelics/*.parquet", "sentences.perplexity_filter=false",
                      "mlflow.enabled=false")
    result = run_stages(cfg, ["ingest", "extract_sentences"], say=lambda *_: None)
    led = result.outcomes[-1].ledgers[0]
    assert led.rows_in == led.kept + led.rejected_total
    s = TableStore(spark, cfg).read("silver.sentences")
    reached = s.where("reason IS NULL OR reason = 'low_entropy'")
    by_length = {r["short"]: (r["n"], r["low"]) for r in reached.groupBy((F.col("n_words") <= 8).alias("short")).agg(
        F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("reason") == "low_entropy", 1)).alias("low")).collect()}
    for short, (n, low) in by_length.items():
        assert n > 500 and low / n < 0.01, (short, n, low)
    got = {r["text"]: r["reason"] for r in s.where(F.col("text").isin(planted)).collect()}
    assert got == {t: "low_entropy" for t in planted}
