"""Input files identified by their bytes: a moved or copied file with the same content is
not new input.

Each file's sha256 is computed once and kept in a small JSON cache (uri -> size, modified
time, hash) beside the tables; a later run hashes again only the files whose uri, size or
modified time it has not seen. The identity handed to the fingerprint is the sorted list
of content hashes, with no path in it. Files are read through Hadoop's FileSystem, the
one that listed them (any scheme Spark reads: file, s3a, abfss, dbfs, hdfs), on the
driver: the first run reads every input byte once.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from realsyn.udfs import object_files

BLOCK = 1 << 20
log = logging.getLogger("realsyn")


def file_sha256(uri: str) -> str:
    """sha256 of a file's bytes, streamed (a local path, file: or object store URI)."""
    filesystem, path = object_files.filesystem(uri)
    h = hashlib.sha256()
    with filesystem.open_input_stream(path) as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def hadoop_sha256(spark) -> Callable[[str], str]:
    """sha256 of a file read through Hadoop's FileSystem in the driver's JVM (commons-codec
    ships with Spark), so every scheme Spark lists can be hashed."""
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()

    def digest(uri: str) -> str:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        stream = path.getFileSystem(conf).open(path)
        try:
            return str(jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex(stream))
        finally:
            stream.close()
    return digest


def read_cache(cache_uri: str) -> dict[str, list]:
    try:
        data = json.loads(object_files.read_bytes(cache_uri))
    except (OSError, ValueError, FileNotFoundError):
        return {}   # no cache yet, or an unreadable one: everything is hashed again
    return data if isinstance(data, dict) else {}


def write_cache(cache_uri: str, cache: dict[str, list], say=None) -> None:
    """The cache only saves work: a store it cannot be written to costs a rehash next run."""
    import os
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(cache, fh, sort_keys=True)
    try:
        object_files.upload(fh.name, cache_uri)
    except (OSError, ValueError) as err:
        if say is not None:
            say(f"[ingest] input hash cache not written to {cache_uri} ({type(err).__name__}): "
                "the next run hashes the input files again")
    finally:
        os.unlink(fh.name)


def content_hashes(files: list[tuple[str, int, int]], cache_uri: str,
                   hash_file: Callable[[str], str] = file_sha256, say=None, write: bool = True) -> list[str]:
    """The sorted content hashes of `files` ((uri, size, modified) each), hashing only the
    files the cache does not know at that size and time; the cache is rewritten when it grew
    (unless `write` is off: a plan)."""
    cache = read_cache(cache_uri)
    out, fresh = [], 0
    for uri, size, modified in files:
        known = cache.get(uri)
        if not (isinstance(known, list) and len(known) == 3 and known[:2] == [size, modified]):
            known = [size, modified, hash_file(uri)]
            cache[uri] = known
            fresh += 1
        out.append(str(known[2]))
    if fresh and write:
        log.info("ingest: hashed %d input file(s) not seen before (content identity)", fresh)
        current = {uri for uri, _, _ in files}
        write_cache(cache_uri, {u: v for u, v in cache.items() if u in current}, say)
    return sorted(out)
