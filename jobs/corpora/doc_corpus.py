"""OBELICS-format documents from HTML documentation that a Debian package installs here.

The default source is debian-handbook: the same book in 26 languages, human-written prose
with screenshots, the closest thing to real web pages this machine can read offline.
One HTML page -> one document; its text blocks (paragraphs, list items, headings, cells)
and <img> elements become slots in reading order, images as file:// URLs. Code listings
(<pre>), scripts and styles are left out. Nothing is copied into the repo: the corpus is
written at run time from the installed package. The page's images are copied beside the
corpus (<out>/images/...) and the URLs point at the copies: dpkg installs the handbook's
screenshots as hard links shared between languages, which the fetcher refuses
(`hard_link`), so a run reads them with `fetch.file_root=<out>`.

    python -m realsyn.jobs.corpora.doc_corpus --out work/handbook --languages en-US
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

HANDBOOK_ROOT = "/usr/share/doc/debian-handbook/html"
HANDBOOK_PACKAGE = "debian-handbook"
SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                    ("metadata", pa.string()), ("general_metadata", pa.string())])
# Tags whose start or end closes the current text block.
BLOCK_TAGS = {"address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "div", "dl", "dt",
              "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
              "main", "nav", "ol", "p", "section", "table", "tbody", "td", "th", "thead", "tr", "ul"}
SKIP_TAGS = {"head", "script", "style", "pre", "noscript", "template"}
VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source"}


class CorpusMissing(RuntimeError):
    """The documentation package is not installed."""


class PageParser(HTMLParser):
    """Slots of one page: ("text", str) and ("image", src, alt) in document order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.slots: list[tuple] = []
        self._text: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text = []
        if text:
            self.slots.append(("text", text))

    def handle_starttag(self, tag, attrs):
        if tag in SKIP_TAGS:
            self._flush()
            self._skip += tag not in VOID_TAGS
            return
        if self._skip:
            return
        if tag in BLOCK_TAGS:
            self._flush()
        elif tag == "img":
            a = dict(attrs)
            if a.get("src"):
                self._flush()
                self.slots.append(("image", a["src"], a.get("alt")))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)   # <img/>, <br/>: no end tag follows

    def handle_endtag(self, tag):
        if tag in SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if not self._skip and tag in BLOCK_TAGS:
            self._flush()

    def handle_data(self, data):
        if not self._skip:
            self._text.append(data)

    def close(self):
        super().close()
        self._flush()


def page_document(path: Path, root: Path) -> dict | None:
    """One OBELICS row for an HTML page; None when the page has no text."""
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    images: list[str | None] = []
    texts: list[str | None] = []
    meta: list[dict | None] = []
    for slot in parser.slots:
        if slot[0] == "text":
            images.append(None)
            texts.append(slot[1])
            meta.append(None)
            continue
        src = urlsplit(slot[1])
        if src.scheme or src.netloc:   # remote images are not installed: a dangling URL as on the web
            url = slot[1]
        else:
            url = "file://" + quote(os.path.normpath(path.parent / unquote(src.path)))
        images.append(url)
        texts.append(None)
        meta.append({"src": slot[1], "alt_text": slot[2]})
    if not any(texts):
        return None
    general = {"url": "file://" + quote(str(path)), "source": str(path.relative_to(root))}
    return {"images": images, "texts": texts, "metadata": json.dumps(meta), "general_metadata": json.dumps(general)}


def available_languages(root: str = HANDBOOK_ROOT) -> list[str]:
    base = Path(root)
    if not base.is_dir():
        raise CorpusMissing(f"{root} not found: install the Debian package {HANDBOOK_PACKAGE} "
                            f"(apt-get install {HANDBOOK_PACKAGE})")
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.html")))


def write_corpus(out_dir: str, languages: list[str] | None = None, root: str = HANDBOOK_ROOT,
                 pages: int | None = None) -> dict:
    """<out>/obelics/<language>.parquet, one row per page; languages None = all installed;
    pages: at most this many pages per language (the first by file name), None = all."""
    have = available_languages(root)
    wanted = have if not languages else languages
    missing = sorted(set(wanted) - set(have))
    if missing:
        raise CorpusMissing(f"languages {missing} not under {root} (installed: {', '.join(have)})")
    out = Path(out_dir) / "obelics"
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for lang in wanted:
        rows = [d for p in sorted((Path(root) / lang).glob("*.html")) if (d := page_document(p, Path(root)))]
        rows = rows[:pages] if pages is not None else rows
        for row in rows:
            row["images"] = [copied_image(u, Path(root), Path(out_dir) / "images") for u in row["images"]]
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out / f"{lang}.parquet")
        counts[lang] = len(rows)
    return {"out": str(out), "root": root, "documents": counts}


def copied_image(url: str | None, root: Path, images: Path) -> str | None:
    """A file:// URL under `root` -> the URL of its copy under `images` (a file of its own;
    a missing file stays missing there). Other URLs are left as they are."""
    prefix = "file://" + quote(str(root)) + "/"
    if not url or not url.startswith(prefix):
        return url
    rel = unquote(url[len(prefix):])
    target = images / rel
    source = root / rel
    if source.is_file() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return "file://" + quote(str(target))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--languages", nargs="*", help="folder names such as en-US (default: all installed)")
    args = ap.parse_args(argv)
    try:
        info = write_corpus(args.out, args.languages)
    except CorpusMissing as err:
        print(f"doc_corpus: {err}", file=sys.stderr)
        return 2
    print(f"doc_corpus: {sum(info['documents'].values())} documents in {len(info['documents'])} languages "
          f"-> {info['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
