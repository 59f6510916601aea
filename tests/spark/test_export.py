import glob
import os
import re

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
        # train-NNNNN.parquet: stable shard ids (an increment adds shards), the live ones in manifest.json
        assert files and all(re.fullmatch(r"train-\d{5,}\.parquet", os.path.basename(f)) for f in files)
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


def _export_dir(cfg):
    return os.path.join(cfg.get("run.work_dir"), "export")


def test_dataset_card_counts_equal_the_tables_and_figures_are_pngs(spark, sample_pipeline):
    import json

    from mlflow.tracking import MlflowClient
    from pyspark.sql import functions as F

    from realsyn.jobs.export import FUNNEL_TABLES
    from realsyn.udfs.dataset_card import card_data
    cfg, result, store = sample_pipeline
    out = _export_dir(cfg)
    with open(f"{out}/README.md") as fh:
        md = fh.read()
    data = card_data(md)
    gold = store.read("gold.realsyn")
    assert data["gold_rows"] == gold.count() > 0
    assert f"Pairs in gold.realsyn: {gold.count()}" in md
    for cap in cfg.get("balance.caps"):
        n = gold.where(F.col("min_cap") <= cap).count()
        assert data["subsets"][str(cap)] == n and f"| {cap} | {n} | `realsyn_cap{cap}/` |" in md
    for name in FUNNEL_TABLES:
        df = store.read(name)
        kept = df.where("status = 'kept'").count() if "status" in df.columns else df.count()
        assert data["tables"][name] == {"rows": df.count(), "kept": kept}, name
        assert f"| {name} | {df.count()} | {kept} |" in md
    # The funnel is each stage's latest ledger before the export ran, as in meta.stage_runs.
    runs = store.read("meta.stage_runs").toArrow().to_pylist()
    export_run = max((r for r in runs if r["stage"] == "export"), key=lambda r: r["finished_at"])
    stages = [s["stage"] for s in data["stages"]]
    from realsyn.jobs.pipeline import stage_names
    assert stages[0] == "ingest" and stages[-1] == "export" and len(set(stages)) == len(stage_names())
    for s in data["stages"]:
        assert s["in"] == s["kept"] + sum(s["rejected"].values())
        before = [r for r in runs if r["stage"] == s["stage"] and r["finished_at"] <= export_run["finished_at"]]
        led = json.loads(max(before, key=lambda r: r["finished_at"])["ledger"])[s["ledger"]]
        assert led == {"in": s["in"], "kept": s["kept"], "rejected": s["rejected"]}
    pngs = ["cluster_sizes.png", "similarity.png", "samples.png"]
    for name in pngs:
        assert f"]({name})" in md
        with open(f"{out}/{name}", "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        from PIL import Image
        with Image.open(f"{out}/{name}") as im:
            im.verify()
    # The same files are artifacts of the export stage's MLflow run.
    client = MlflowClient(result.tracking_uri)
    logged = {os.path.basename(a.path) for a in client.list_artifacts(export_run["mlflow_run_id"], "dataset_card")}
    assert logged >= {"README.md", *pngs}


def test_torch_dataloader_yields_every_gold_row_once(spark, sample_pipeline):
    from collections import Counter

    import torch
    from torch.utils.data import DataLoader

    from realsyn.jobs.lib.torch_data import gold_dataset
    cfg, _, store = sample_pipeline
    gold = {r["image_id"]: r for r in store.read("gold.realsyn").toArrow().to_pylist()}
    for workers in (0, 2):
        ds = gold_dataset(os.path.join(_export_dir(cfg), "mds"), batch_size=4)
        seen, batches = Counter(), 0
        for batch in DataLoader(ds, batch_size=4, num_workers=workers):
            assert isinstance(batch["sim"], torch.Tensor) and len(batch["image_id"]) <= 4
            batches += 1
            for i, image_id in enumerate(batch["image_id"]):
                seen[image_id] += 1
                row = gold[image_id]
                assert batch["text1"][i] == (row["text1"] or "") and batch["syn_text"][i] == row["syn_text"]
                assert int(batch["cluster_id"][i]) == row["cluster_id"]
                assert int(batch["min_cap"][i]) == (row["min_cap"] if row["min_cap"] is not None else -1)
        assert batches >= 2, workers
        assert set(seen) == set(gold) and set(seen.values()) == {1}, workers
        del ds


def test_every_writer_has_a_ledger_that_balances(sample_pipeline):
    _, result, _ = sample_pipeline
    ledgers = {l.name: l for o in result.outcomes if o.name == "export" for l in o.ledgers}
    assert {"webdataset", "mds"} <= set(ledgers) and any(n.startswith("release_cap") for n in ledgers)
    for led in ledgers.values():
        assert led.rows_in == led.kept + led.rejected_total and led.kept > 0, led


def test_a_row_the_shard_writer_cannot_write_is_counted_not_dropped(spark, tmp_path):
    from realsyn.jobs.core.stage import Ledger
    from realsyn.jobs.lib.webdataset_export import write_shards
    from tests.http_fixture import jpeg
    row = dict(raw_image_url="http://x/a.jpg", text1="a", text2="b", text3="c", syn_text="d", cluster_id=1, min_cap=2)
    rows = [dict(row, image_id="ab" * 32, bytes=jpeg()), dict(row, image_id="../../etc/x", bytes=jpeg()),
            dict(row, image_id="cd" * 32, bytes=b"no longer an image")]
    report = write_shards(spark.createDataFrame(rows), str(tmp_path / "wds"), 64)
    assert report == {"rows_in": 3, "written": 1, "rejected": {"bad_key": 1, "image_error": 1}, "shards": 1}
    led = Ledger("webdataset", report["rows_in"], report["written"], report["rejected"])
    led.check("export")
    assert sorted(os.listdir(tmp_path / "wds")) == ["00000.tar"]


def test_an_export_is_swapped_in_whole_and_marked_complete_last(spark, sample_pipeline, tmp_path):
    """The sample's export ended with _SUCCESS and a manifest naming its files, and left no
    staging; a new export staged but not swapped in (a kill, a full disk) leaves the old one
    whole and no folder a `realsyn_cap*` glob picks up; the swap moves in the staged files
    the new manifest names, deletes the managed files it does not name, leaves a named file
    that was not staged as it is, and touches nothing else."""
    import json
    from realsyn.jobs.export import INCOMPLETE, MANIFEST, STAGING, SUCCESS
    from realsyn.jobs.lib.export_shards import swap
    cfg, _, _ = sample_pipeline
    out = os.path.join(cfg.get("run.work_dir"), "export")
    names = set(os.listdir(out))
    assert {SUCCESS, MANIFEST} <= names and INCOMPLETE not in names and STAGING not in names
    assert json.load(open(os.path.join(out, SUCCESS)))["subsets"]
    listed = json.load(open(os.path.join(out, MANIFEST)))["outputs"]
    assert set(listed["realsyn_cap2"]["files"]) == {
        os.path.relpath(f, out) for f in glob.glob(f"{out}/realsyn_cap2/*.parquet")}

    final, staged = tmp_path / "export", tmp_path / "export" / STAGING
    (final / "realsyn_cap2").mkdir(parents=True)
    (final / "realsyn_cap2" / "train-00000.parquet").write_bytes(b"old shard")
    (final / "realsyn_cap2" / "train-00001.parquet").write_bytes(b"untouched shard")
    (final / "README.md").write_text("old card")
    (final / "notes.txt").write_text("the user's own file")
    (final / "realsyn_cap9").mkdir()                      # a cap the new export no longer has
    (staged / "realsyn_cap2" / ".tmp-00003-x").mkdir(parents=True)   # a failed task's leftovers
    (staged / "realsyn_cap2" / "train-00002.parquet").write_bytes(b"new 2")
    (staged / "README.md").write_text("new card")
    record = {"rows": 1, "bytes": 1, "sha256": "", "shard": 1}
    manifest = {"format": 1, "run": "r1", "card": ["README.md"], "summary": {"run": "r1", "subsets": {"2": 2}},
                "outputs": {"realsyn_cap2": {"shards": {}, "files": {
                    "realsyn_cap2/train-00001.parquet": record, "realsyn_cap2/train-00002.parquet": record}}}}
    # killed before the swap: the old export is whole, and globs see only it
    assert sorted(glob.glob(f"{final}/realsyn_cap*")) == [f"{final}/realsyn_cap2", f"{final}/realsyn_cap9"]
    assert (final / "README.md").read_text() == "old card"
    (staged / MANIFEST).write_text(json.dumps(manifest))
    untouched = os.stat(final / "realsyn_cap2" / "train-00001.parquet").st_mtime_ns
    swap(spark, str(final))
    assert sorted(os.listdir(final)) == ["README.md", SUCCESS, MANIFEST, "notes.txt", "realsyn_cap2"]
    assert sorted(os.listdir(final / "realsyn_cap2")) == ["train-00001.parquet", "train-00002.parquet"]
    assert os.stat(final / "realsyn_cap2" / "train-00001.parquet").st_mtime_ns == untouched
    assert (final / "README.md").read_text() == "new card" and (final / "notes.txt").read_text() == "the user's own file"
    assert json.loads((final / SUCCESS).read_text()) == {"run": "r1", "subsets": {"2": 2}}
    assert json.loads((final / MANIFEST).read_text()) == manifest
