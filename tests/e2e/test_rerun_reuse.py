"""A rerun reuses every row that did not change: after the weights folder and the input files
move (same bytes), and after a code edit in every runtime module and a comment in every
module, no unit table computes a row, no URL is fetched, no image is searched again and no
k-means is fitted again; the tables the rows live in keep their versions."""
from __future__ import annotations

import re
import shutil

import pytest

from realsyn.jobs.core import module_graph
from tests.conftest import SAMPLE_CONF, make_config

UNIT_TABLES = ("silver.image_fetches", "silver.image_decodes", "silver.document_sentences", "silver.sentences",
               "silver.image_embeddings", "silver.sentence_embeddings", "gold.synthetic")
# Tables whose rows a rerun reuses: after a runtime edit, each keeps its version.
REUSED_TABLES = UNIT_TABLES + ("gold.text_centroids", "gold.retrievals")
KEPT_TABLES = REUSED_TABLES + ("bronze.documents",)
# Every stage that reuses rows, and those between them; balance and export update by
# increments too (issue #41, tests/spark/test_balance_increment.py and
# test_export_increment.py) and would only add minutes here.
STAGES = ["ingest", "extract_images", "extract_sentences", "embed", "semantic_neighbours", "semantic_dedup",
          "cluster", "retrieve", "generate"]


def unit_lines(lines: list[str]) -> dict[str, tuple[int, int, int]]:
    """table -> (keys, already done, computed) from the stages' unit report lines."""
    out = {}
    for line in lines:
        m = re.search(r"\] (\S+): (\d+) keys, (\d+) already done, (\d+) computed", line)
        if m:
            out[m[1]] = (int(m[2]), int(m[3]), int(m[4]))
    return out


def tiny_clip_weights(folder) -> None:
    """The tiny preset's CLIP saved as safetensors where models.weights_dir loads it."""
    from realsyn.jobs.training.clip_training import save_weights
    from realsyn.udfs.clip_encoder import Encoder, EncoderSpec
    (folder / "clip").mkdir(parents=True)
    save_weights(Encoder(EncoderSpec(arch="tiny", pretrained="", weights="", seed=3, threads=1, mixed_precision=False)), str(folder / "clip" / "tiny.safetensors"))


def edited_tree(root):
    """A copy of the package with a code edit in every runtime module and a comment added
    to every module."""
    tree = root / "src" / "realsyn"
    shutil.copytree(module_graph.ROOT, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    edited = []
    for path in tree.rglob("*.py"):
        parts = path.relative_to(tree.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        path.write_text("# an edit that changes nothing\n" + path.read_text())
        if module in module_graph.RUNTIME:
            path.write_text(path.read_text() + "\n_REALSYN_RUNTIME_EDIT = 1\n")
            edited.append(module)
    return tree, edited


@pytest.fixture(scope="module")
def reruns(spark, tmp_path_factory, monkeypatch_module):
    from realsyn.jobs.pipeline import run_stages
    from realsyn.jobs.corpora.sample_corpus import write_sample
    from realsyn.jobs.core.tables import TableStore
    root = tmp_path_factory.mktemp("reuse")
    sample = write_sample(str(root / "sample"), n_docs=40, seed=5, n_images=40)["out"]
    shutil.copytree(f"{sample}/obelics", root / "in")
    tiny_clip_weights(root / "weights")

    def config(inputs, weights):
        return make_config(root / "work", f"run.input={inputs}/*.parquet", f"fetch.file_root={sample}",
                           f"models.weights_dir={weights}", "models.weights_roles=[clip]",
                           "units.fetch_rows=20", "units.embed_rows=50", files=[SAMPLE_CONF])

    cfg = config(root / "in", root / "weights")
    store = TableStore(spark, cfg)
    first: list[str] = []
    run_stages(cfg, STAGES, say=first.append)
    versions = {t: store.version(t) for t in KEPT_TABLES}

    shutil.move(root / "weights", root / "moved-weights")
    shutil.copytree(root / "in", root / "moved-in")      # copied: new paths and new times, same bytes
    shutil.rmtree(root / "in")
    moved: list[str] = []
    run_stages(config(root / "moved-in", root / "moved-weights"), STAGES, say=moved.append)
    moved_versions = {t: store.version(t) for t in KEPT_TABLES}

    tree, edited = edited_tree(root)
    monkeypatch_module.setattr(module_graph, "ROOT", tree)
    edits: list[str] = []
    run_stages(config(root / "moved-in", root / "moved-weights"), STAGES, say=edits.append)
    return first, versions, moved, moved_versions, edits, edited, {t: store.version(t) for t in REUSED_TABLES}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_moved_weights_and_inputs_recompute_nothing_and_change_no_table(reruns):
    first, versions, moved, moved_versions, *_ = reruns
    assert set(unit_lines(first)) >= set(UNIT_TABLES)
    assert all(computed > 0 for _, _, computed in unit_lines(first).values())
    assert moved_versions == versions, [l for l in moved if "started" in l or "ingest" in l]
    assert unit_lines(moved) == {}, "a unit table was recomputed"
    assert all("skipped" in line for line in moved if re.match(r"\[\w+\] (started|skipped)", line)), moved


def test_a_code_edit_in_every_runtime_module_recomputes_no_row(reruns):
    *_, versions, edits, edited, after = reruns
    assert {"realsyn.jobs.core.config", "realsyn.jobs.core.tracking", "realsyn.jobs.core.stage", "realsyn.jobs.cli"} <= set(edited)
    # Every stage imports the runtime, so each one runs its cheap checks again...
    assert sum(1 for line in edits if re.match(r"\[\w+\] started", line)) == len(STAGES), edits
    # ...and finds nothing to compute: no unit, no fetch, no search, no fit.
    units = unit_lines(edits)
    assert set(units) == set(UNIT_TABLES)
    assert all(computed == 0 and done == keys for keys, done, computed in units.values()), units
    assert any(re.search(r"\[retrieve\] 0 cluster\(s\) changed: 0 image\(s\) to search", line) for line in edits), edits
    assert after == {t: versions[t] for t in REUSED_TABLES}, "a table holding reused rows was rewritten"
