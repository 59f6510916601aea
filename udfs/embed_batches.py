"""mapInArrow / mapInPandas bodies that embed images (from bytes) and sentences; bad rows get a reason.

The stage uses the Arrow bodies (`*_arrow`): record batches go straight to the encoder
and back without a pandas DataFrame per batch. The pandas bodies stay for callers that
use mapInPandas; both share the per-chunk code, so they give the same rows.
"""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from realsyn.udfs.clip_encoder import EncoderSpec, encoder_for, open_image
from realsyn.udfs.vector_codec import to_bytes

OUTPUT_COLUMNS = ["embedding", "model", "dim", "dtype", "status", "reason"]
# Spark schema of a body's output, keyed by image_id or sentence_id.
OUTPUT_DDL = "{key} string, embedding binary, model string, dim int, dtype string, status string, reason string"


def _chunks(df: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(df), size):
        yield df.iloc[start:start + size]


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


def _image_chunk(enc, dtype: str, keys: list, blobs: list) -> dict[str, list]:
    images, failed = [], {}
    for key, data in zip(keys, blobs):
        try:
            images.append(open_image(data))
        except Exception:
            failed[key] = "undecodable"
    vectors = enc.encode_images(images) if images else None
    return _columns(keys, vectors, enc, dtype, failed)


def _text_chunk(enc, dtype: str, keys: list, texts: list) -> dict[str, list]:
    texts = ["" if t is None else t for t in texts]
    failed: dict[str, str] = {}
    try:
        vectors = enc.encode_texts(texts)
    except Exception:   # find the bad rows one by one rather than lose the batch
        good = []
        for k, t in zip(keys, texts):
            try:
                enc.encode_texts([t])
                good.append(t)
            except Exception:
                failed[k] = "encode_error"
        vectors = enc.encode_texts(good) if good else None
    return _columns(keys, vectors, enc, dtype, failed)


def _pandas_body(spec: EncoderSpec, batch_size: int, dtype: str, key: str, value: str, chunk_fn):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        enc = encoder_for(spec)
        for batch in batches:
            for chunk in _chunks(batch, batch_size):
                keys = chunk[key].tolist()
                cols = chunk_fn(enc, dtype, keys, chunk[value].tolist())
                yield pd.DataFrame({key: keys, **cols}, columns=[key, *OUTPUT_COLUMNS])
    return run


def _arrow_body(spec: EncoderSpec, batch_size: int, dtype: str, key: str, value: str, chunk_fn):
    def run(batches):
        import pyarrow as pa
        schema = pa.schema([(key, pa.string()), ("embedding", pa.binary()), ("model", pa.string()),
                            ("dim", pa.int32()), ("dtype", pa.string()), ("status", pa.string()),
                            ("reason", pa.string())])
        enc = encoder_for(spec)
        for batch in batches:
            for start in range(0, batch.num_rows, batch_size):
                chunk = batch.slice(start, batch_size)
                keys = chunk.column(key).to_pylist()
                cols = chunk_fn(enc, dtype, keys, chunk.column(value).to_pylist())
                yield pa.RecordBatch.from_pydict({key: keys, **cols}, schema=schema)
    return run


def embed_images(spec: EncoderSpec, batch_size: int, dtype: str):
    return _pandas_body(spec, batch_size, dtype, "image_id", "bytes", _image_chunk)


def embed_texts(spec: EncoderSpec, batch_size: int, dtype: str):
    return _pandas_body(spec, batch_size, dtype, "sentence_id", "text", _text_chunk)


def embed_images_arrow(spec: EncoderSpec, batch_size: int, dtype: str):
    return _arrow_body(spec, batch_size, dtype, "image_id", "bytes", _image_chunk)


def embed_texts_arrow(spec: EncoderSpec, batch_size: int, dtype: str):
    return _arrow_body(spec, batch_size, dtype, "sentence_id", "text", _text_chunk)
