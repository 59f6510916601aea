import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from realsyn.jobs.pipeline import run_stages
from realsyn.jobs.core.stage import InputError
from realsyn.jobs.core.tables import TableStore
from tests.conftest import make_config


def test_ingest_sample_balances_and_records_every_reason(spark, sample_dir, tmp_path):
    cfg = make_config(tmp_path, f"run.input={sample_dir}/obelics/*.parquet")
    result = run_stages(cfg, ["ingest"], say=lambda *_: None)
    ledger = result.outcomes[0].ledgers[0]
    assert ledger.rows_in == 120 + 8 + 1 + 1
    assert ledger.rows_in == ledger.kept + ledger.rejected_total
    expected = {"unequal_lengths", "slot_both_set", "slot_neither_set", "invalid_metadata_json",
                "empty_document", "null_lists", "duplicate_document", "wrong_column_types"}
    assert expected <= set(ledger.rejected)
    assert ledger.rejected["empty_document"] == 2
    store = TableStore(spark, cfg)
    docs = store.read("bronze.documents")
    assert docs.count() == docs.select("doc_id").distinct().count() == ledger.kept


def test_rerun_is_skipped_and_force_redoes_without_duplicates(spark, sample_dir, tmp_path):
    cfg = make_config(tmp_path, f"run.input={sample_dir}/obelics/*.parquet")
    first = run_stages(cfg, ["ingest"], say=lambda *_: None)
    again = run_stages(cfg, ["ingest"], say=lambda *_: None)
    assert again.outcomes[0].skipped
    forced = run_stages(cfg, ["ingest"], force=True, say=lambda *_: None)
    assert not forced.outcomes[0].skipped
    assert forced.tables["bronze.documents"][1] == first.tables["bronze.documents"][1]


def test_changed_config_reruns(spark, sample_dir, tmp_path):
    cfg = make_config(tmp_path, f"run.input={sample_dir}/obelics/*.parquet")
    run_stages(cfg, ["ingest"], say=lambda *_: None)
    changed = make_config(tmp_path, f"run.input={sample_dir}/obelics/*.parquet", "ingest.max_slots=3")
    out = run_stages(changed, ["ingest"], say=lambda *_: None)
    assert not out.outcomes[0].skipped
    assert out.outcomes[0].ledgers[0].rejected["too_many_slots"] > 0


def test_missing_input_is_a_clear_error(spark, tmp_path):
    cfg = make_config(tmp_path, f"run.input={tmp_path}/nothing/*.parquet")
    with pytest.raises(InputError, match="no input files match"):
        run_stages(cfg, ["ingest"], say=lambda *_: None)


def test_not_parquet_is_a_clear_error(spark, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.parquet").write_text("images,texts\n1,2\n")
    cfg = make_config(tmp_path, f"run.input={tmp_path}/in/docs.parquet")
    with pytest.raises(InputError, match="cannot read"):
        run_stages(cfg, ["ingest"], say=lambda *_: None)


def test_giant_document_is_rejected(spark, tmp_path):
    (tmp_path / "in").mkdir()
    rows = [{"images": [None] * 50, "texts": ["word " * 10] * 50, "metadata": "[]", "general_metadata": "{}"}]
    schema = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                        ("metadata", pa.string()), ("general_metadata", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "in" / "big.parquet")
    cfg = make_config(tmp_path, f"run.input={tmp_path}/in", "ingest.max_text_chars=100")
    out = run_stages(cfg, ["ingest"], say=lambda *_: None)
    assert out.outcomes[0].ledgers[0].rejected == {"too_much_text": 1}


def test_oversized_metadata_is_rejected_before_it_is_parsed(spark, tmp_path):
    (tmp_path / "in").mkdir()
    big = "[" + ",".join(['{"alt_text": "' + "x" * 1000 + '"}'] * 3000) + "]"   # 3 MB of JSON
    rows = [{"images": [None], "texts": ["A boat sails on the lake."], "metadata": big, "general_metadata": "{}"},
            {"images": [None], "texts": ["A dog runs in the park."], "metadata": "[]", "general_metadata": "{}"}]
    schema = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                        ("metadata", pa.string()), ("general_metadata", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "in" / "meta.parquet")
    cfg = make_config(tmp_path / "w", f"run.input={tmp_path}/in", "ingest.max_metadata_chars=1000000")
    ledger = run_stages(cfg, ["ingest"], say=lambda *_: None).outcomes[0].ledgers[0]
    assert (ledger.kept, ledger.rejected) == (1, {"metadata_too_large": 1})


def test_a_backtick_in_the_work_dir_is_quoted(spark, sample_dir, tmp_path):
    cfg = make_config(tmp_path / "odd`name", f"run.input={sample_dir}/obelics/*.parquet")
    ledger = run_stages(cfg, ["ingest"], say=lambda *_: None).outcomes[0].ledgers[0]
    assert ledger.kept > 0 and TableStore(spark, cfg).read("bronze.documents").count() == ledger.kept


OBELICS = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                     ("metadata", pa.string()), ("general_metadata", pa.string())])


def obelics_docs(tag: str, n: int) -> list[dict]:
    return [{"images": [None, f"http://x/{tag}/{i}.jpg"], "texts": [f"Document {tag} {i}: " + "words " * 30, None],
             "metadata": "[]", "general_metadata": "{}"} for i in range(n)]


def corrupt_a_data_page(path, row_group: int = 2) -> None:
    """Overwrite the texts column's data page (its header and the start of its body) in one
    row group with junk; the footer and the row groups before it stay valid, so the file
    opens and reads part way. (Junk inside a compressed body alone can decode to other
    text: Parquet has no page checksum by default.)"""
    chunk = pq.ParquetFile(path).metadata.row_group(row_group).column(1)
    with open(path, "r+b") as fh:
        fh.seek(chunk.data_page_offset)
        fh.write(b"\xff" * 32)


def corrupt_inputs(folder, good_docs: dict[str, list[dict]]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, docs in good_docs.items():
        pq.write_table(pa.Table.from_pylist(docs, schema=OBELICS), folder / name)
    # Sorts first: a copy of a good file's document sits in its readable first row group, so a
    # partly read file would also mark that good copy a duplicate.
    paged = folder / "a-corrupt-page.parquet"
    pq.write_table(pa.Table.from_pylist(good_docs["b.parquet"][:1] + obelics_docs("p", 59), schema=OBELICS),
                   paged, row_group_size=20)
    corrupt_a_data_page(paged)
    whole = (folder / "c.parquet").read_bytes()
    (folder / "d-truncated.parquet").write_bytes(whole[: len(whole) // 2])
    return paged, folder / "d-truncated.parquet"


def test_a_corrupt_input_file_is_quarantined_and_the_others_ingested(spark, tmp_path):
    good = {"b.parquet": obelics_docs("b", 7), "c.parquet": obelics_docs("c", 5)}
    paged, truncated = corrupt_inputs(tmp_path / "in", good)
    said: list[str] = []
    cfg = make_config(tmp_path / "w", f"run.input={tmp_path}/in")
    out = run_stages(cfg, ["ingest"], say=said.append).outcomes[0]
    docs_ledger, files_ledger = out.ledgers
    assert (docs_ledger.rows_in, docs_ledger.kept, docs_ledger.rejected) == (12, 12, {})
    assert (files_ledger.rows_in, files_ledger.kept, files_ledger.rejected) == (4, 2, {"corrupt_input_file": 2})
    store = TableStore(spark, cfg)
    docs = store.read("bronze.documents")
    assert sorted(r["texts"][0] for r in docs.collect()) == sorted(d["texts"][0] for g in good.values() for d in g)
    assert {r["source_file"].rsplit("/", 1)[-1] for r in docs.select("source_file").distinct().collect()} == set(good)
    rejects = {r["source_file"].rsplit("/", 1)[-1]: r for r in store.read("bronze.document_rejects").collect()}
    assert set(rejects) == {paged.name, truncated.name}
    assert all(r["reason"] == "corrupt_input_file" and r["row_index"] == -1 and r["detail"] for r in rejects.values())
    assert rejects[paged.name]["detail"].startswith("data page: ")
    assert rejects[truncated.name]["detail"].startswith("footer: ")
    warning = [line for line in said if "warning" in line and "quarantined" in line]
    assert len(warning) == 1 and paged.name in warning[0] and truncated.name in warning[0]

    # An unchanged rerun is skipped and still names the quarantined files.
    said.clear()
    again = run_stages(cfg, ["ingest"], say=said.append).outcomes[0]
    assert again.skipped
    assert any(paged.name in line and truncated.name in line and "earlier run" in line for line in said)

    # New bytes for the corrupt file: it is read again and its rows come in.
    pq.write_table(pa.Table.from_pylist(obelics_docs("p", 4), schema=OBELICS), paged)
    said.clear()
    mended = run_stages(cfg, ["ingest"], say=said.append).outcomes[0]
    assert not mended.skipped
    docs_ledger, files_ledger = mended.ledgers
    assert (docs_ledger.rows_in, docs_ledger.kept) == (16, 16)
    assert (files_ledger.rows_in, files_ledger.kept, files_ledger.rejected) == (4, 3, {"corrupt_input_file": 1})
    assert [line for line in said if "quarantined" in line and paged.name in line] == []
