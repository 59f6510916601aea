"""Input files by content: the identity holds no path, a file is hashed once per
(uri, size, time), and a moved copy with the same bytes has the same identity."""
from __future__ import annotations

import hashlib
import os
import shutil

from realsyn.jobs.core.input_files import content_hashes, file_sha256


def stat(path) -> tuple[str, int, int]:
    st = os.stat(path)
    return (f"file:{path}", st.st_size, st.st_mtime_ns)


def test_moved_files_keep_their_identity_and_each_is_hashed_once(tmp_path):
    (tmp_path / "in").mkdir()
    for name, data in (("a.parquet", b"A" * 3_000_000), ("b.parquet", b"B")):
        (tmp_path / "in" / name).write_bytes(data)
    cache = str(tmp_path / "state" / "input_files.json")
    hashed: list[str] = []

    def counting(uri: str) -> str:
        hashed.append(uri)
        return file_sha256(uri)

    files = [stat(tmp_path / "in" / n) for n in ("a.parquet", "b.parquet")]
    first = content_hashes(files, cache, counting)
    assert first == sorted(hashlib.sha256(d).hexdigest() for d in (b"A" * 3_000_000, b"B"))
    assert content_hashes(files, cache, counting) == first and len(hashed) == 2   # cached
    shutil.copytree(tmp_path / "in", tmp_path / "moved")
    moved = [stat(tmp_path / "moved" / n) for n in ("a.parquet", "b.parquet")]
    assert content_hashes(moved, cache, counting) == first and len(hashed) == 4   # new uris: read once
    (tmp_path / "moved" / "b.parquet").write_bytes(b"C")
    changed = content_hashes([moved[0], stat(tmp_path / "moved" / "b.parquet")], cache, counting)
    assert changed != first and hashlib.sha256(b"C").hexdigest() in changed
    kept = open(cache).read()
    shutil.copytree(tmp_path / "in", tmp_path / "planned")
    planned = [stat(tmp_path / "planned" / n) for n in ("a.parquet", "b.parquet")]
    assert content_hashes(planned, cache, counting, write=False) == first   # a plan hashes, writes no cache
    assert open(cache).read() == kept


def test_an_unreadable_cache_is_rebuilt(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"x")
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    assert content_hashes([stat(tmp_path / "x.parquet")], str(cache)) == [hashlib.sha256(b"x").hexdigest()]
    assert "x.parquet" in cache.read_text()
