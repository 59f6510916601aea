"""Decode and measure image bytes with Pillow: size, format, content hash, perceptual hash.

Bad bytes become a reason (empty, not_an_image, truncated, decompression_bomb, ...);
the pixel count is checked from the header before any pixel is decoded.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError


@dataclass
class Decoded:
    image_id: str | None
    width: int | None
    height: int | None
    format: str | None
    phash: int | None
    reason: str | None


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] *= 1 / np.sqrt(2)
    return m * np.sqrt(2 / n)


_DCT32 = _dct_matrix(32)


def phash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash (32x32 grey, low 8x8 frequencies vs their median), as int64."""
    grey = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT32 @ grey @ _DCT32.T)[:8, :8]
    bits = (low > np.median(low)).flatten()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value - (1 << 64) if value >= (1 << 63) else value


def hamming(a: int, b: int) -> int:
    return bin((a ^ b) & 0xFFFFFFFFFFFFFFFF).count("1")


def decode(data: bytes | None, max_pixels: int) -> Decoded:
    if not data:
        return Decoded(None, None, None, None, None, "empty")
    image_id = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                return Decoded(image_id, width, height, img.format, None, "decompression_bomb")
            fmt = img.format
            img.load()
            return Decoded(image_id, width, height, fmt, phash(img), None)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Decoded(image_id, None, None, None, None, "decompression_bomb")
    except UnidentifiedImageError:
        return Decoded(image_id, None, None, None, None, "not_an_image")
    except (OSError, SyntaxError, ValueError) as err:
        reason = "truncated" if "truncated" in str(err).lower() else "corrupt"
        return Decoded(image_id, None, None, None, None, reason)
    except Exception:  # any other decoder failure is a reason, not a crash
        return Decoded(image_id, None, None, None, None, "corrupt")
