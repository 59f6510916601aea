"""A stage reaches only its declared tables: the context has no store or config to hand out."""
from __future__ import annotations

import pytest

from realsyn.jobs.core.stage import Context, Stage, UndeclaredTable


class Reader(Stage):
    name = "reader"
    inputs = ("silver.images",)
    outputs = ("gold.synthetic",)


def test_undeclared_tables_and_run_records_are_refused():
    ctx = Context(spark=None, _store=None, tracker=None, stage=Reader())
    with pytest.raises(UndeclaredTable, match="reads silver.sentences"):
        ctx.read("silver.sentences")
    with pytest.raises(UndeclaredTable, match="writes silver.images"):
        ctx.write("silver.images", None)
    with pytest.raises(UndeclaredTable, match="meta.stage_runs"):
        ctx.latest_runs()
    for touch in (lambda: ctx.append("silver.images", None), lambda: ctx.delete_keys("silver.images", "url_id", None)):
        with pytest.raises(UndeclaredTable, match="writes silver.images"):
            touch()
    with pytest.raises(UndeclaredTable, match="reads silver.sentences"):
        ctx.table_property("silver.sentences", "x")


def test_the_context_holds_no_store_or_config_by_a_public_name():
    ctx = Context(spark=None, _store=None, tracker=None, stage=Reader())
    public = {n for n in vars(ctx) if not n.startswith("_")}
    # resources / unit_rows: the stage's declarations resolved to numbers, not the config
    assert public == {"spark", "tracker", "stage", "run_id", "params_hash", "stage_order", "resources",
                      "full_refresh", "unit_rows", "say", "unit_target_s", "unit_first_rows", "writes"}
