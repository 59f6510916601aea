"""The pipeline over a corpus of 50+ kinds of bad input: it finishes, ledgers balance, every
bad row has a reason, and each kind ends where it should (printed as a table)."""
import json

import pytest

from tests.conftest import SAMPLE_CONF, make_config
from tests.fuzz_corpus import not_parquet, write_fuzz
from tests.http_fixture import Server


def outcome(rows) -> str:
    if not rows:
        return "absent"
    return "|".join(sorted({"kept" if r["status"] == "kept" else r["reason"] for r in rows}))


# Every fuzz case ends in ingest or an extract stage; embed is the first stage that hands what
# survived (kept text and image bytes) to a model. The default case runs through it; the slow
# case runs the whole pipeline and checks the healthy rows reach the release.
def through_stages(last: str) -> list[str]:
    """The runner's stages up to and including `last`."""
    from realsyn.jobs.pipeline import stage_names
    names = stage_names()
    return names[:names.index(last) + 1]


@pytest.mark.parametrize("through", ["embed", pytest.param("all", marks=pytest.mark.slow)])
def test_fuzz_corpus_through_the_pipeline(spark, tmp_path, through):
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.tables import TableStore
    with Server() as server:
        root, cases = write_fuzz(str(tmp_path / "fuzz"), server.base)
        cfg = make_config(tmp_path / "work", f"run.input={root}/obelics/*.parquet", f"fetch.file_root={root}",
                          "fetch.allow_loopback=true", "fetch.connect_timeout_s=2", "fetch.read_timeout_s=2",
                          "fetch.retries=1", "fetch.backoff_s=0.05",
                          "fetch.max_bytes=250000", files=[SAMPLE_CONF])
        stages = through_stages(through) if through != "all" else None
        result = run_stages(cfg, stages, say=lambda *_: None)
    if stages:
        assert [o.name for o in result.outcomes] == stages
    assert len({c.kind for c in cases}) >= 50
    tables = TableStore(spark, cfg)

    for o in result.outcomes:   # every stage ran and balanced (run_stages checks, this re-reads)
        for ledger in o.ledgers:
            assert ledger.rows_in == ledger.kept + sum(ledger.rejected.values()), (o.name, ledger)
    for name in ("silver.images", "silver.sentences"):
        bad = tables.read(name).where("status != 'kept' AND (reason IS NULL OR reason = '')").count()
        assert bad == 0, f"{name}: rejected rows without a reason"
    assert tables.read("bronze.document_rejects").where("reason IS NULL").count() == 0

    rejects = tables.read("bronze.document_rejects").select("source_file", "row_index", "reason").collect()
    by_position, by_file = {}, {}
    for r in rejects:
        name, row = r["source_file"].rsplit("/", 1)[-1], {"status": "rejected", "reason": r["reason"]}
        by_position.setdefault((name, r["row_index"]), []).append(row)
        by_file.setdefault(name, []).append(row)
    kept_urls = {r["url"] for r in tables.read("bronze.documents").select("url").collect()}  # None: no URL
    images = {}
    for r in tables.read("silver.images").select("url", "status", "reason").collect():
        images.setdefault(r["url"], []).append(r)
    sentences = tables.read("silver.sentences").select("text", "status", "reason").collect()

    table, wrong = [], []
    for c in cases:
        if c.where == "file":
            got = outcome(by_file.get(c.file.rsplit("/", 1)[-1], []))
        elif c.where == "document":
            pos = (c.file.rsplit("/", 1)[-1], c.extra["row_index"])
            if pos in by_position:
                got = outcome(by_position[pos])
            else:   # kept: found by its document URL (None when general_metadata is null)
                gm = c.doc["general_metadata"]
                got = "kept" if (json.loads(gm).get("url") if gm else None) in kept_urls else "absent"
        elif c.where == "image":
            got = outcome(images.get(c.url, []))
        else:
            got = outcome([r for r in sentences if c.probe in (r["text"] or "")])
        ok = bool(set(got.split("|")) & c.expect) and got != "absent"
        table.append((c.kind, c.where, got, "ok" if ok else f"EXPECTED {sorted(c.expect)}"))
        if not ok:
            wrong.append(c.kind)
    width = max(len(k) for k, *_ in table)
    print("\nfuzz kind -> outcome")
    for kind, where, got, verdict in table:
        print(f"  {kind:<{width}}  {where:<8}  {got:<28} {verdict}")
    assert not wrong, f"unexpected outcomes: {wrong}"
    last = "gold.realsyn" if through == "all" else "silver.image_embeddings"
    assert tables.read(last).count() > 0, "the healthy part of the corpus made it to the end"


def test_a_file_that_is_not_parquet_stops_the_run_clearly(spark, tmp_path):
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.core.stage import InputError
    (tmp_path / "in").mkdir()
    bad = not_parquet(str(tmp_path / "in" / "part-0.parquet"))
    cfg = make_config(tmp_path / "work", f"run.input={bad}")
    with pytest.raises(InputError, match="cannot read .* as OBELICS parquet"):
        run_stages(cfg, ["ingest"], say=lambda *_: None)
