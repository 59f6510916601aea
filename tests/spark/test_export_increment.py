"""Incremental export (issue #41): after an increment only the shards whose rows changed
are written again, new rows get new shards, and every output holds exactly the rows a
full export of the same gold rows holds. Tiny gold tables built here, no pipeline."""
import glob
import hashlib
import io
import json
import math
import os
import shutil
import tarfile

import pyarrow.parquet as pq
import pytest

from tests.http_fixture import jpeg

GOLD_DDL = ("image_id string, raw_image_url string, text1 string, text2 string, text3 string, syn_text string, "
            "score1 float, sim float, cluster_id int, min_cap int")
CAPS = (2, 5)
MIN_CAPS = [0, 1, 2, 4, 5, 7, None]
MARKERS = ("_SUCCESS", "_INCOMPLETE", "manifest.json")


def image(i: int) -> bytes:
    return jpeg(24 + i % 9, 20 + i % 7, ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))


def gold_row(i: int) -> dict:
    return {"image_id": hashlib.sha256(image(i)).hexdigest(), "raw_image_url": f"http://ex.com/{i:03d}.jpg",
            "text1": f"A Photo, of thing {i}.", "text2": f"Second text {i}!", "text3": None if i % 4 == 0 else f"third {i}",
            "syn_text": f"Synthetic TEXT {i}", "score1": 0.5 + i / 1000, "sim": None if i % 6 == 0 else 0.25,
            "cluster_id": i % 5, "min_cap": MIN_CAPS[i % len(MIN_CAPS)]}


A = [gold_row(i) for i in range(42)]
CHANGED, DROPPED = 7, 9          # min_cap 0 and 2: in both caps, the tars and MDS
AB = [dict(r, text1="An edited text.") if i == CHANGED else r for i, r in enumerate(A) if i != DROPPED]
AB += [gold_row(i) for i in range(100, 112)]
# One image has no bytes: the tar writer refuses it (image_error), the ledger counts it.
IMAGES = [{"image_id": r["image_id"], "bytes": image(i)} for i, r in enumerate(A) if i != 3]
IMAGES += [{"image_id": gold_row(i)["image_id"], "bytes": image(i)} for i in range(100, 112)]


def params(**kw):
    from realsyn.jobs.export import ExportParams
    base = dict(work_dir="", export_dir="", caps=CAPS, sim_min=-1.0, sim_max=1.0, seed=1, shard_bytes=400,
                resize_to=16, webdataset=True, mds=True, mds_shard_bytes=1_000, card_samples=0, card_sim_bins=10,
                world="")
    return ExportParams(**{**base, **kw})


def export(spark, rows, folder, run, full_refresh=False, say=None, **kw):
    from realsyn.jobs.export import commit, stage_exports
    gold = spark.createDataFrame(rows, GOLD_DDL)
    images = spark.createDataFrame(IMAGES, "image_id string, bytes binary")
    staged = stage_exports(spark, gold, images, params(**kw), str(folder), run, full_refresh,
                           say=say or (lambda *_: None), wds_rows_per_shard=5)
    commit(spark, str(folder), staged.manifest, [], {"run": run, "subsets": staged.counts})
    return staged


def files(folder) -> dict[str, tuple[int, str]]:
    """Every file under the export -> (mtime_ns, sha256)."""
    out = {}
    for path in glob.glob(f"{folder}/**/*", recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = (os.stat(path).st_mtime_ns, hashlib.sha256(fh.read()).hexdigest())
    return out


def data_files(folder) -> set[str]:
    return {p for p in files(folder) if p not in MARKERS and not p.startswith("_index/")}


def mds_samples(folder, scratch) -> list[tuple]:
    """The samples of an MDS folder, through streaming's own reader (its zstd shards
    decompressed into a scratch copy first)."""
    from streaming.base.compression import decompress
    from streaming.base.local import LocalDataset
    shutil.copytree(folder, scratch)
    for entry in json.load(open(f"{scratch}/index.json"))["shards"]:
        if entry.get("zip_data"):
            with open(f"{scratch}/{entry['zip_data']['basename']}", "rb") as fh:
                raw = decompress(entry["compression"], fh.read())
            with open(f"{scratch}/{entry['raw_data']['basename']}", "wb") as fh:
                fh.write(raw)
    ds = LocalDataset(str(scratch))

    def plain(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and math.isnan(v) else v
    return sorted(tuple(sorted((k, plain(v)) for k, v in ds[i].items())) for i in range(len(ds)))


def exported_rows(folder, scratch) -> dict[str, list]:
    """What readers see: the release Parquet per cap, the tars' samples, the MDS samples."""
    out = {}
    for cap in CAPS:
        out[f"realsyn_cap{cap}"] = sorted(
            tuple(r.values()) for f in sorted(glob.glob(f"{folder}/realsyn_cap{cap}/*.parquet"))
            for r in pq.read_table(f).to_pylist())
    samples = []
    for shard in sorted(glob.glob(f"{folder}/webdataset/*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name in members:
            if name.endswith(".jpg"):
                key = name[:-4]
                samples.append((key, hashlib.sha256(members[name]).hexdigest(), members[f"{key}.txt"].decode(),
                                members[f"{key}.json"].decode()))
    out["webdataset"] = sorted(samples)
    out["mds"] = mds_samples(f"{folder}/mds", scratch)
    return out


def check_manifest(folder) -> dict:
    """The manifest names exactly the files of the export, with their sha256 and rows."""
    manifest = json.load(open(f"{folder}/manifest.json"))
    on_disk = files(folder)
    named = {}
    for entry in manifest["outputs"].values():
        named.update(entry["files"])
        named.update({s["sidecar"]["path"]: s["sidecar"] for s in entry["shards"].values()})
    assert set(named) == set(on_disk) - set(MARKERS)
    for path, record in named.items():
        assert record["sha256"] == on_disk[path][1] and record["bytes"] == os.path.getsize(f"{folder}/{path}"), path
    for cap in CAPS:
        for path, record in manifest["outputs"][f"realsyn_cap{cap}"]["files"].items():
            assert pq.read_metadata(f"{folder}/{path}").num_rows == record["rows"]
    return manifest


def check_ledgers(staged, rows):
    expected = {**{f"release_cap{c}": sum(1 for r in rows if r["min_cap"] is not None and r["min_cap"] <= c)
                   for c in CAPS},
                "webdataset": sum(1 for r in rows if r["min_cap"] is not None and r["min_cap"] <= max(CAPS)),
                "mds": len(rows)}
    ledgers = {led.name: led for led in staged.writers}
    assert {n: led.rows_in for n, led in ledgers.items()} == expected
    for led in ledgers.values():
        led.check("export")
    assert ledgers["webdataset"].rejected == {"image_error": 1}     # image 3 has no bytes
    return {n: (led.rows_in, led.kept, led.rejected) for n, led in ledgers.items()}


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """An export of A, and a full export of A+B into a fresh folder (the reference)."""
    root = tmp_path_factory.mktemp("export-increment")
    first = export(spark, A, root / "a", "run-a")
    check_ledgers(first, A)
    full = export(spark, AB, root / "full", "run-full")
    return root, exported_rows(root / "full", root / "scratch-full"), check_ledgers(full, AB)


def test_an_increment_rewrites_only_changed_shards_and_equals_a_full_export(spark, built, tmp_path):
    root, reference, reference_ledgers = built
    folder = tmp_path / "export"
    shutil.copytree(root / "a", folder)
    before = files(folder)
    old_manifest = check_manifest(folder)
    said = []
    staged = export(spark, AB, folder, "run-b", say=said.append)
    after = files(folder)
    manifest = check_manifest(folder)
    # (1) every output holds what a full export of A+B holds, and the edit is in it
    rows = exported_rows(folder, tmp_path / "scratch")
    assert rows == reference
    assert ("http://ex.com/007.jpg", "an edited text .") in {r[:2] for r in rows["realsyn_cap2"]}
    assert not any(r[0] == "http://ex.com/009.jpg" for r in rows["realsyn_cap5"])
    # (2) a file still there is the file that was there: same mtime, same bytes (but MDS's
    # merged index, which names the live groups)
    kept = (set(before) & set(after)) - set(MARKERS) - {"mds/index.json"}
    assert {p: after[p] for p in kept} == {p: before[p] for p in kept}
    for name in ("realsyn_cap2", "realsyn_cap5", "webdataset", "mds"):
        old_files = set(old_manifest["outputs"][name]["files"])
        new_files = set(manifest["outputs"][name]["files"])
        assert old_files & new_files, f"{name}: no file left untouched"
        # the shards that held the edited and the dropped row were written again
        assert old_files - new_files, f"{name}: no file rewritten"
    # (3) fewer files written than the export holds
    written = data_files(folder) - set(before)
    assert 0 < len(written) < len(data_files(folder))
    assert any("increment" in line for line in said) and not any("no complete" in line for line in said)
    # (4) ledgers exact, the same as the full export's
    assert check_ledgers(staged, AB) == reference_ledgers


def test_settings_code_and_missing_files_decide_a_full_build(spark, monkeypatch):
    from realsyn.jobs.core import module_graph
    from realsyn.jobs.export import release_output
    from realsyn.jobs.lib.export_shards import rebuild_reason
    from realsyn.jobs.lib.torch_data import mds_output
    from realsyn.jobs.lib.webdataset_export import webdataset_output
    gold = spark.createDataFrame([], GOLD_DDL)
    images = spark.createDataFrame([], "image_id string, bytes binary")
    wds = webdataset_output(gold, images, 16).fingerprint()
    assert wds == webdataset_output(gold, images, 16).fingerprint()
    assert wds != webdataset_output(gold, images, 12).fingerprint()
    assert wds != webdataset_output(gold, images, 16, rows_per_shard=5).fingerprint()
    assert release_output(gold, 2, 400).fingerprint() != release_output(gold, 2, 800).fingerprint()
    assert mds_output(gold, 1_000).fingerprint() != mds_output(gold, 2_000).fingerprint()
    real = module_graph.work_code_hash
    monkeypatch.setattr(module_graph, "work_code_hash",
                        lambda name: "edited" if name == "realsyn.udfs.webdataset_shards" else real(name))
    assert webdataset_output(gold, images, 16).fingerprint() != wds
    monkeypatch.undo()
    out = release_output(gold, 2, 400)
    entry = {"settings": out.fingerprint(), "files": {"realsyn_cap2/train-00000.parquet": {"bytes": 10}},
             "shards": {"0": {"sidecar": {"path": "_index/realsyn_cap2/00000.parquet", "bytes": 5}}}}
    present = {"realsyn_cap2/train-00000.parquet": 10, "_index/realsyn_cap2/00000.parquet": 5}
    assert rebuild_reason(out, entry, present, False) is None
    assert rebuild_reason(out, None, present, False)
    assert rebuild_reason(out, entry, present, True) == "--full-refresh"
    assert "settings" in rebuild_reason(release_output(gold, 2, 800), entry, present, False)
    assert "missing" in rebuild_reason(out, entry, {**present, "realsyn_cap2/train-00000.parquet": 11}, False)
    assert "missing" in rebuild_reason(out, entry, {"realsyn_cap2/train-00000.parquet": 10}, False)


@pytest.mark.slow
def test_what_changes_the_files_builds_an_output_whole(spark, built, tmp_path):
    """A new resize_to rebuilds the tars only; --full-refresh rebuilds everything; each
    time with the same rows, and no file name reused for other bytes."""
    root, reference, _ = built
    folder = tmp_path / "export"
    shutil.copytree(root / "a", folder)
    export(spark, AB, folder, "run-b")
    before = files(folder)
    said = []
    export(spark, AB, folder, "run-c", say=said.append, resize_to=12)
    after = files(folder)
    tars = {p for p in after if p.startswith("webdataset/")}
    assert tars and not tars & set(before)
    assert {p: after[p] for p in after if p.startswith("realsyn_cap")} == {
        p: before[p] for p in before if p.startswith("realsyn_cap")}
    assert any("webdataset" in line and "settings" in line for line in said)
    export(spark, AB, folder, "run-d", full_refresh=True, resize_to=12)
    assert not (data_files(folder) - {"mds/index.json"}) & set(after)
    check_manifest(folder)
    rows = exported_rows(folder, tmp_path / "scratch")
    assert {k: v for k, v in rows.items() if k != "webdataset"} == {k: v for k, v in reference.items() if k != "webdataset"}
    assert [r[0] for r in rows["webdataset"]] == [r[0] for r in reference["webdataset"]]


class Killed(Exception):
    pass


# Killed in the swap is the case with its own path (the next run finishes the swap); killed
# while staging, the next run is an ordinary increment from the old export.
@pytest.mark.parametrize("where", [pytest.param("staging", marks=pytest.mark.slow), "swap"])
def test_an_increment_killed_midway_resumes_to_the_clean_result(spark, built, tmp_path, monkeypatch, where):
    """Killed after the first output was staged (the old export stays whole and
    complete), or after the swap moved some files in (`_INCOMPLETE` stays): the next run
    gives what a clean run gives."""
    from realsyn.jobs.lib import export_shards
    root, reference, reference_ledgers = built
    folder = tmp_path / "export"
    shutil.copytree(root / "a", folder)
    before = files(folder)
    name = "write_shard_files" if where == "staging" else "_move"
    real, calls = getattr(export_shards, name), []

    def dies(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Killed(where)
        return real(*args, **kwargs)
    monkeypatch.setattr(export_shards, name, dies)
    with pytest.raises(Killed):
        export(spark, AB, folder, "run-killed")
    monkeypatch.setattr(export_shards, name, real)
    if where == "staging":
        assert {p: v for p, v in files(folder).items() if not p.startswith(".staging/")} == before
    else:
        assert os.path.exists(folder / "_INCOMPLETE") and not os.path.exists(folder / "_SUCCESS")
    said = []
    staged = export(spark, AB, folder, "run-resumed", say=said.append)
    assert not os.path.exists(folder / "_INCOMPLETE") and not os.path.exists(folder / ".staging")
    check_manifest(folder)
    assert exported_rows(folder, tmp_path / "scratch") == reference
    assert check_ledgers(staged, AB) == reference_ledgers
    if where == "swap":
        assert any("finishing the swap" in line for line in said)
        # the killed run's increment was finished, so the rerun found nothing to write
        assert all(line.startswith("[export] finishing") or " 0 of " in line for line in said)


@pytest.mark.slow
def test_an_increment_on_an_object_store_leaves_untouched_objects_alone(spark, s3_server, built, tmp_path):
    root, reference, reference_ledgers = built
    bucket = s3_server.bucket("realsyn-export-increment")
    client = s3_server.client()

    def objects() -> dict:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="export/")
        return {o["Key"][len("export/"):]: (o["ETag"], o["LastModified"]) for page in pages
                for o in page.get("Contents", []) if not o["Key"].endswith("/")}
    export(spark, A, f"s3a://{bucket}/export", "run-a")
    before = objects()
    staged = export(spark, AB, f"s3a://{bucket}/export", "run-b")
    after = objects()
    kept = (set(before) & set(after)) - set(MARKERS) - {"mds/index.json"}
    assert kept and {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert not any(k.startswith(".staging/") for k in after)
    local = tmp_path / "export"
    for key in after:
        os.makedirs(os.path.dirname(local / key), exist_ok=True)
        client.download_file(bucket, f"export/{key}", str(local / key))
    check_manifest(local)
    assert exported_rows(local, tmp_path / "scratch") == reference
    assert check_ledgers(staged, AB) == reference_ledgers
