import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from realsyn.jobs.pipeline import run_stages
from realsyn.jobs.stage import InputError
from realsyn.jobs.tables import TableStore
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
