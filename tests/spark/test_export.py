import glob
import os

import pyarrow.parquet as pq
import webdataset as wds


def test_gold_table_has_cdf_comments_and_run_properties(spark, sample_pipeline):
    _, result, store = sample_pipeline
    led = {l.name: l for o in result.outcomes for l in o.ledgers}["export_pairs"]
    assert led.rows_in == led.kept + led.rejected_total and led.kept > 0
    detail = spark.sql(f"DESCRIBE DETAIL {store.identifier('gold.realsyn')}").first()
    assert detail["properties"].get("delta.enableChangeDataFeed") == "true"
    assert detail["properties"].get("realsyn.config_hash")
    gold = store.read("gold.realsyn")
    assert gold.count() == gold.select("image_id").distinct().count()


def test_release_parquet_is_exactly_the_public_format(sample_pipeline):
    cfg, _, _ = sample_pipeline
    out = os.path.join(cfg.get("run.work_dir"), "export")
    previous = 0
    for cap in cfg.get("balance.caps"):
        files = sorted(glob.glob(f"{out}/realsyn_cap{cap}/*.parquet"))
        assert files and all(os.path.basename(f).startswith("train-") and "-of-" in f for f in files)
        table = pq.ParquetDataset(files).read()
        assert table.column_names == ["raw_image_url", "text1", "text2", "text3", "syn_text"]
        rows = table.to_pylist()
        assert len(rows) >= previous       # nested subsets grow with the cap
        previous = len(rows)
        for r in rows[:10]:
            assert r["syn_text"] == r["syn_text"].lower() and r["text1"] == r["text1"].lower()
            assert " ." in r["text1"] or not r["text1"].endswith(".")   # word-tokenized punctuation


def test_webdataset_shards_read_back_like_open_clip(sample_pipeline):
    cfg, _, _ = sample_pipeline
    shards = sorted(glob.glob(os.path.join(cfg.get("run.work_dir"), "export", "webdataset", "*.tar")))
    assert shards
    ds = wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("jpg", "txt", "json")
    n = 0
    for img, txt, meta in ds:
        assert min(img.size) <= cfg.get("export.resize_to") and isinstance(txt, str)
        assert set(meta) >= {"text2", "text3", "syn_text", "image_id"}
        n += 1
    assert n > 0
