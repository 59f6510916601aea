import io

import numpy as np
from PIL import Image

from realsyn.udfs.dataset_card import (card_data, card_markdown, cluster_size_png, sample_grid_png,
                                       similarity_png)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
        return im.format == "PNG"


def _jpeg(color):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), color).save(buf, "JPEG")
    return buf.getvalue()


def test_figures_are_valid_pngs(tmp_path):
    sizes = np.array([1, 3, 8, 40, 400, 2])
    assert _is_png(cluster_size_png(str(tmp_path / "c.png"), sizes, {20: np.minimum(sizes, 20)}))
    edges = np.linspace(-1, 1, 101)
    assert _is_png(similarity_png(str(tmp_path / "s.png"), edges, np.arange(100), (0.51, 0.61)))
    samples = [{"bytes": _jpeg("red"), "text1": "a $5 price tag with a long text " * 4, "syn_text": "x_1^2 $$"},
               {"bytes": b"not an image", "text1": None, "syn_text": "still shown"}]
    assert _is_png(sample_grid_png(str(tmp_path / "g.png"), samples))
    assert _is_png(sample_grid_png(str(tmp_path / "empty.png"), []))
    assert _is_png(cluster_size_png(str(tmp_path / "none.png"), np.array([], int), {}))


def test_card_lists_counts_and_round_trips_its_numbers():
    data = {"gold_rows": 7, "subsets": {2: 3, 4: 5, 8: 7}, "run": "r1", "config_hash": "h",
            "stages": [{"stage": "ingest", "ledger": "documents", "in": 10, "kept": 8,
                        "rejected": {"bad_url": 2}}],
            "tables": {"gold.realsyn": {"rows": 7, "kept": 7}}, "files": ["`mds/`"]}
    md = card_markdown(data, {"cluster sizes": "cluster_sizes.png"})
    assert "| 4 | 5 | `realsyn_cap4/` |" in md
    assert "| ingest | documents | 10 | 8 | 2 | bad_url=2 |" in md
    assert "![cluster sizes](cluster_sizes.png)" in md
    back = card_data(md)
    assert back["gold_rows"] == 7 and back["subsets"] == {"2": 3, "4": 5, "8": 7}


def test_card_shows_the_funnel_beside_the_papers():
    stages = [{"stage": "extract_sentences", "ledger": "sentences", "in": 1000, "kept": 400,
               "rejected": {"duplicate_sentence": 300, "too_few_words": 100, "low_entropy": 200}},
              {"stage": "embed", "ledger": "sentence_embeddings", "in": 400, "kept": 400, "rejected": {}}]
    data = {"gold_rows": 0, "subsets": {}, "stages": stages, "tables": {}}
    md = card_markdown(data, {})
    assert "## Funnel beside the paper's" in md and "### Sentences" in md and "### Images" not in md
    # Paper: 1.82B -> 1.16B is 36.3% removed; this run: 200 of the 900 left after quality, 22.2%.
    assert "| semantic: entropy + perplexity | 1,160,000,000 | 36.3% | 700 | 22.2% | -14.0 |" in md
    assert "| sentence pool | 2,130,000,000 | - | 1,000 | - | - |" in md
    assert card_data(md)["paper_funnel"]["sentences"][-1]["ours"] == 400


def test_card_shows_semantic_sentence_dedup_against_the_truth():
    row = {"n": 4, "same_scene": 0.5, "different_scene": 0.25, "other_prose": 0.25}
    dd = {"scored": 10, "removed": row, "curve": [{"threshold": 0.98, "removed_share": 0.4, **row}]}
    md = card_markdown({"gold_rows": 0, "subsets": {}, "stages": [], "tables": {}, "sentence_dedup": dd}, {})
    assert "### Semantic sentence dedup" in md and "Of the 10 sentences semantic dedup scored" in md
    assert "| this run | 40.0% | 4 | 50.0% | 25.0% | 25.0% |" in md
    assert "| ≥ 0.98 | 40.0% | 4 | 50.0% | 25.0% | 25.0% |" in md
    assert card_data(md)["sentence_dedup"]["removed"]["n"] == 4


def test_card_shows_the_sentence_filters_against_the_truth():
    sf = {"classes": [{"class": "description", "planted": 10, "found": 9, "kept": 8, "removed_by": {"perplexity": 1}},
                      {"class": "shuffled_words", "planted": 3, "found": 3, "kept": 0,
                       "removed_by": {"perplexity": 3}},
                      {"class": "page prose", "planted": None, "found": 5, "kept": 5, "removed_by": {}}],
          "descriptions_kept": 8 / 9, "junk_removed": 1.0, "junk_removed_by_perplexity": 1.0}
    md = card_markdown({"gold_rows": 0, "subsets": {}, "stages": [], "tables": {}, "sentence_filters": sf}, {})
    assert "### Sentence filters" in md and "Descriptions kept: 88.9%" in md
    assert "| description | 10 | 9 | 8 | 1 |" in md and "| page prose | - | 5 | 5 | 0 |" in md
    assert card_data(md)["sentence_filters"]["junk_removed"] == 1.0
