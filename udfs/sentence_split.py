"""Split text slots into sentences; normalise and hash them (sentence_id).

Two splitters behind one function: pysbd (rule-based, ships its rules, offline) and a
plain regex baseline. docs/decisions.md has the measured comparison.
"""
from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

_REGEX_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_SPACE = re.compile(r"\s+")
# pysbd's time grows faster than the text on list-like slots ("1. 2. 3. ..."): a slot
# longer than this is split into pieces of at most this many characters first, each cut
# at the last line break, sentence end or space in its second half, so a document of
# ingest's 2,000,000 characters costs time in proportion to its length.
PIECE_CHARS = 2000
_CUTS = (re.compile(r"\n"), re.compile(r"[.!?][\"')\]]*\s"), re.compile(r"\s"))


def pieces(text: str, limit: int = PIECE_CHARS) -> list[str]:
    """`text` cut into pieces of at most `limit` characters, at natural boundaries."""
    out, start = [], 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        cut = limit
        for boundary in _CUTS:
            ends = [m.end() for m in boundary.finditer(window, limit // 2)]
            if ends:
                cut = ends[-1]
                break
        out.append(window[:cut])
        start += cut
    out.append(text[start:])
    return out


@functools.lru_cache(maxsize=1)
def _pysbd():
    import pysbd
    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def split(text: str | None, method: str = "pysbd") -> list[str]:
    if not text or not text.strip():
        return []
    if method == "regex":
        parts = _REGEX_BOUNDARY.split(text.strip())
    else:
        parts = []
        for piece in pieces(text):
            try:
                parts.extend(_pysbd().segment(piece))
            except Exception:  # pysbd can fail on odd input; fall back rather than lose the text
                parts.extend(_REGEX_BOUNDARY.split(piece.strip()))
    return [p.strip() for p in parts if p and p.strip()]


def normalise(sentence: str) -> str:
    """NFKC, collapsed whitespace, lowercased: the form that is hashed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", sentence)).strip().lower()


def sentence_id(sentence: str) -> str:
    return hashlib.sha256(normalise(sentence).encode("utf-8", "surrogatepass")).hexdigest()


def document_sentences(texts, method: str = "pysbd") -> list[dict[str, str]]:
    """Every sentence of a document's text slots, in order and with repeats, as
    {sentence_id, text}: what silver.document_sentences stores per document."""
    return [{"sentence_id": sentence_id(s), "text": s}
            for t in (texts if texts is not None else ()) for s in split(t, method)]
