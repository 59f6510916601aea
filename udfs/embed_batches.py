"""mapInArrow / mapInPandas bodies that embed images (from bytes) and sentences; bad rows get a reason.

The stage uses the Arrow bodies (`*_arrow`): record batches go straight to the encoder
and back without a pandas DataFrame per batch. The pandas bodies stay for callers that
use mapInPandas; both share the per-chunk code, so they give the same rows.
"""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from realsyn.udfs.clip_encoder import EncoderSpec, encoder_for, open_image
from realsyn.udfs.image_batches import bounded_chunks
from realsyn.udfs.vector_codec import to_bytes

OUTPUT_COLUMNS = ["embedding", "model", "dim", "dtype", "status", "reason"]
# Spark schema of a body's output, keyed by image_id or sentence_id.
OUTPUT_DDL = "{key} string, embedding binary, model string, dim int, dtype string, status string, reason string"


def _row_chunks(values: list, rows: int, enc) -> list[tuple[int, int]]:
    return [(0, len(values))]


def _image_chunks(values: list, rows: int, enc) -> list[tuple[int, int]]:
    """Images are held reduced to the encoder's input side, and a chunk of `rows` images is
    cut further where its pixels would exceed the budget."""
    return bounded_chunks(values, rows, enc.image_size)


def _columns(keys: list, vectors, enc, dtype: str, failed: dict) -> dict[str, list]:
    """Output columns for one chunk, in input order; failed: key -> reason."""
    blobs = iter(to_bytes(vectors, dtype)) if vectors is not None else iter(())
    emb, status, reason = [], [], []
    for k in keys:
        bad = failed.get(k)
        emb.append(None if bad else next(blobs))
        status.append("rejected" if bad else "kept")
        reason.append(bad)
    n = len(keys)
    return {"embedding": emb, "model": [enc.model_id] * n, "dim": [enc.dim] * n, "dtype": [dtype] * n,
            "status": status, "reason": reason}


def _image_chunk(enc, dtype: str, keys: list, blobs: list, rows: int) -> dict[str, list]:
    images, failed = [], {}
    for key, data in zip(keys, blobs):
        try:
            images.append(open_image(data, enc.image_size))
        except Exception:
            failed[key] = "undecodable"
    vectors = enc.encode_images(images, rows) if images else None
    return _columns(keys, vectors, enc, dtype, failed)


def _text_chunk(enc, dtype: str, keys: list, texts: list, rows: int) -> dict[str, list]:
    texts = ["" if t is None else t for t in texts]
    failed: dict[str, str] = {}
    try:
        vectors = enc.encode_texts(texts, rows)
    except Exception:   # find the bad rows one by one rather than lose the batch
        good = []
        for k, t in zip(keys, texts):
            try:
                enc.encode_texts([t])
                good.append(t)
            except Exception:
                failed[k] = "encode_error"
        vectors = enc.encode_texts(good, rows) if good else None
    return _columns(keys, vectors, enc, dtype, failed)


def _pandas_body(spec: EncoderSpec, batch_size: int, dtype: str, key: str, value: str, chunk_fn, chunks_fn):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        enc = encoder_for(spec)
        for batch in batches:
            for first in range(0, len(batch), batch_size):
                part = batch.iloc[first:first + batch_size]
                all_keys, values = part[key].tolist(), part[value].tolist()
                for start, stop in chunks_fn(values, batch_size, enc):
                    keys = all_keys[start:stop]
                    # Every chunk encoded at batch_size rows: a vector does not depend on its batch.
                    cols = chunk_fn(enc, dtype, keys, values[start:stop], batch_size)
                    yield pd.DataFrame({key: keys, **cols}, columns=[key, *OUTPUT_COLUMNS])
    return run


def _arrow_body(spec: EncoderSpec, batch_size: int, dtype: str, key: str, value: str, chunk_fn, chunks_fn):
    def run(batches):
        import pyarrow as pa
        schema = pa.schema([(key, pa.string()), ("embedding", pa.binary()), ("model", pa.string()),
                            ("dim", pa.int32()), ("dtype", pa.string()), ("status", pa.string()),
                            ("reason", pa.string())])
        enc = encoder_for(spec)
        for batch in batches:
            for first in range(0, batch.num_rows, batch_size):
                part = batch.slice(first, batch_size)
                all_keys, values = part.column(key).to_pylist(), part.column(value).to_pylist()
                for start, stop in chunks_fn(values, batch_size, enc):
                    keys = all_keys[start:stop]
                    # Every chunk encoded at batch_size rows: a vector does not depend on its batch.
                    cols = chunk_fn(enc, dtype, keys, values[start:stop], batch_size)
                    yield pa.RecordBatch.from_pydict({key: keys, **cols}, schema=schema)
    return run


def embed_images(spec: EncoderSpec, batch_size: int, dtype: str):
    return _pandas_body(spec, batch_size, dtype, "image_id", "bytes", _image_chunk, _image_chunks)


def embed_texts(spec: EncoderSpec, batch_size: int, dtype: str):
    return _pandas_body(spec, batch_size, dtype, "sentence_id", "text", _text_chunk, _row_chunks)


def embed_images_arrow(spec: EncoderSpec, batch_size: int, dtype: str):
    return _arrow_body(spec, batch_size, dtype, "image_id", "bytes", _image_chunk, _image_chunks)


def embed_texts_arrow(spec: EncoderSpec, batch_size: int, dtype: str):
    return _arrow_body(spec, batch_size, dtype, "sentence_id", "text", _text_chunk, _row_chunks)
