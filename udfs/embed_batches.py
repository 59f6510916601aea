"""mapInPandas bodies that embed images (from bytes) and sentences; bad rows get a reason."""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from realsyn.udfs.clip_encoder import EncoderSpec, encoder_for, open_image, to_bytes

OUTPUT_COLUMNS = ["embedding", "model", "dim", "dtype", "status", "reason"]


def _chunks(df: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(df), size):
        yield df.iloc[start:start + size]


def _rows(key_col, keys, vectors, enc, dtype, failed: dict) -> pd.DataFrame:
    blobs = iter(to_bytes(vectors, dtype)) if vectors is not None else iter(())
    out = []
    for k in keys:
        if k in failed:
            out.append((k, None, enc.model_id, enc.dim, dtype, "rejected", failed[k]))
        else:
            out.append((k, next(blobs), enc.model_id, enc.dim, dtype, "kept", None))
    return pd.DataFrame(out, columns=[key_col, *OUTPUT_COLUMNS])


def embed_images(spec: EncoderSpec, batch_size: int, dtype: str):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        enc = encoder_for(spec)
        for batch in batches:
            for chunk in _chunks(batch, batch_size):
                images, failed = [], {}
                for key, data in zip(chunk["image_id"], chunk["bytes"]):
                    try:
                        images.append(open_image(data))
                    except Exception:
                        failed[key] = "undecodable"
                vectors = enc.encode_images(images) if images else None
                yield _rows("image_id", chunk["image_id"].tolist(), vectors, enc, dtype, failed)
    return run


def embed_texts(spec: EncoderSpec, batch_size: int, dtype: str):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        enc = encoder_for(spec)
        for batch in batches:
            for chunk in _chunks(batch, batch_size):
                keys = chunk["sentence_id"].tolist()
                texts = chunk["text"].fillna("").tolist()
                try:
                    vectors, failed = enc.encode_texts(texts), {}
                except Exception:   # find the bad rows one by one rather than lose the batch
                    good, failed = [], {}
                    for k, t in zip(keys, texts):
                        try:
                            enc.encode_texts([t])
                            good.append(t)
                        except Exception:
                            failed[k] = "encode_error"
                    vectors = enc.encode_texts(good) if good else None
                yield _rows("sentence_id", keys, vectors, enc, dtype, failed)
    return run
