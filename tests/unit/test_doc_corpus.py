"""HTML documentation pages -> OBELICS rows (jobs/corpora/doc_corpus.py), on pages written here."""
import json

import pyarrow.parquet as pq
import pytest

from realsyn.jobs.corpora.doc_corpus import CorpusMissing, page_document, write_corpus

PAGE = """<html><head><title>Not text</title><style>p {color: red}</style></head><body>
<div class="para">The first   paragraph spans
two lines.</div><pre>$ apt-get install something</pre>
<p>See the <code>apt</code> command <img src="images/shot%201.png" alt="A screenshot"/> for details.</p>
<ul><li>One item.</li><li>Another item.</li></ul><script>var x = "never text";</script>
<img src="https://example.org/remote.png"/></body></html>"""


def test_page_slots_in_reading_order(tmp_path):
    (tmp_path / "en").mkdir()
    page = tmp_path / "en" / "p.html"
    page.write_text(PAGE)
    doc = page_document(page, tmp_path)
    assert doc["texts"] == ["The first paragraph spans two lines.", "See the apt command", None, "for details.",
                            "One item.", "Another item.", None]
    assert doc["images"][2] == f"file://{tmp_path}/en/images/shot%201.png"
    assert doc["images"][-1] == "https://example.org/remote.png"
    assert [t is None for t in doc["texts"]] == [i is not None for i in doc["images"]]
    meta = json.loads(doc["metadata"])
    assert meta[2] == {"src": "images/shot%201.png", "alt_text": "A screenshot"} and meta[0] is None
    assert json.loads(doc["general_metadata"])["source"] == "en/p.html"


def test_corpus_per_language_and_missing_package(tmp_path):
    root = tmp_path / "html"
    for lang in ("en-US", "de-DE"):
        (root / lang).mkdir(parents=True)
        (root / lang / "a.html").write_text(PAGE)
        (root / lang / "empty.html").write_text("<html><body><img src='x.png'/></body></html>")
    info = write_corpus(str(tmp_path / "out"), ["en-US"], root=str(root))
    assert info["documents"] == {"en-US": 1}            # a page without text is no document
    assert pq.read_table(tmp_path / "out" / "obelics" / "en-US.parquet").num_rows == 1
    assert write_corpus(str(tmp_path / "all"), None, root=str(root))["documents"] == {"de-DE": 1, "en-US": 1}
    (root / "en-US" / "b.html").write_text(PAGE)
    assert write_corpus(str(tmp_path / "first"), ["en-US"], root=str(root), pages=1)["documents"] == {"en-US": 1}
    assert write_corpus(str(tmp_path / "both"), ["en-US"], root=str(root))["documents"] == {"en-US": 2}
    with pytest.raises(CorpusMissing, match="fr-FR"):
        write_corpus(str(tmp_path / "x"), ["fr-FR"], root=str(root))
    with pytest.raises(CorpusMissing, match="apt-get install debian-handbook"):
        write_corpus(str(tmp_path / "y"), None, root=str(tmp_path / "nowhere"))


def test_images_are_copied_beside_the_corpus_so_hard_links_are_not_refused(tmp_path):
    """dpkg installs the handbook's screenshots as hard links; the corpus points at copies of
    its own (link count 1) under <out>/images, and a missing image stays missing there."""
    import os
    from urllib.parse import unquote, urlparse
    root = tmp_path / "html"
    (root / "en-US" / "images").mkdir(parents=True)
    (root / "en-US" / "a.html").write_text(
        "<html><body><p>Text.</p><img src='images/shot 1.png'/><img src='images/gone.png'/>"
        "<img src='https://example.org/r.png'/></body></html>")
    (root / "en-US" / "images" / "shot 1.png").write_bytes(b"\x89PNG fake")
    os.link(root / "en-US" / "images" / "shot 1.png", tmp_path / "other-name.png")
    write_corpus(str(tmp_path / "out"), ["en-US"], root=str(root))
    images = pq.read_table(tmp_path / "out" / "obelics" / "en-US.parquet").to_pylist()[0]["images"]
    copy, gone = (unquote(urlparse(u).path) for u in images[1:3])
    assert copy == str(tmp_path / "out" / "images" / "en-US" / "images" / "shot 1.png")
    assert open(copy, "rb").read() == b"\x89PNG fake" and os.stat(copy).st_nlink == 1
    assert gone.startswith(str(tmp_path / "out" / "images")) and not os.path.exists(gone)
    assert images[3] == "https://example.org/r.png"
