"""Stored vectors: L2-normalised float32 rows <-> fixed-width little-endian bytes (float32 or
float16). The one codec of the project: every writer and reader of an embedding column uses it."""
from __future__ import annotations

import numpy as np


def _np_dtype(dtype: str) -> np.dtype:
    return np.dtype("<f2" if dtype == "float16" else "<f4")


def to_bytes(vectors: np.ndarray, dtype: str) -> list[bytes]:
    """(n, dim) array -> n byte strings of dim values each."""
    arr = np.ascontiguousarray(vectors.astype(_np_dtype(dtype)))
    buf, width = arr.tobytes(), arr.shape[1] * arr.itemsize
    return [buf[i * width:(i + 1) * width] for i in range(arr.shape[0])]


def arrow_vectors(arr, dim: int, dtype: str = "float32") -> np.ndarray:
    """A pyarrow binary column of stored vectors -> (n, dim) float32, without Python objects.

    Reads the values buffer in place; every value must be exactly one vector long.
    """
    import pyarrow as pa
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    np_dtype = _np_dtype(dtype)
    n, width = len(arr), dim * np_dtype.itemsize
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    if arr.null_count:
        raise ValueError("null embedding in a vector column")
    off_type = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=off_type)[arr.offset:arr.offset + n + 1]
    if not (np.diff(offsets) == width).all():
        raise ValueError(f"embedding of the wrong length (expected {width} bytes: dim={dim}, {dtype})")
    vecs = np.frombuffer(arr.buffers()[2], dtype=np_dtype, count=n * dim, offset=int(offsets[0]))
    return vecs.reshape(n, dim).astype(np.float32, copy=np_dtype != np.float32)


def from_bytes(blobs, dim: int, dtype: str = "float32") -> np.ndarray:
    """A sequence of stored vectors (bytes, e.g. a pandas column's values) -> (n, dim) float32."""
    import pyarrow as pa
    return arrow_vectors(pa.array(list(blobs), pa.binary()), dim, dtype)
