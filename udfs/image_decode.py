"""Decode and measure image bytes with Pillow: size, format, content hash, perceptual hash.

Bad bytes become a reason (empty, not_an_image, truncated, decompression_bomb, ...).
Bounded before any pixel is decoded: only the formats the config accepts are tried (never
one that runs an external program, such as EPS through Ghostscript), the pixel count is
read from the header, a JPEG's scan count is capped (progressive decoding time grows
with it), and the block structures that make Pillow slow are refused before it opens the
bytes (udfs/image_structure.py). EXIF orientation is applied, so hashes, embeddings and exports see the image
upright.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from realsyn.udfs.image_structure import structure_reason

# Formats the config may accept: decoded by Pillow itself, with no external program.
# (Camera JPEGs that Pillow reports as MPO are opened by its JPEG plugin.)
SAFE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
JPEG_FORMATS = ("JPEG", "MPO")
SOS = b"\xff\xda"   # start of scan; entropy-coded data stuffs 0xFF with 0x00, so this is a marker


@dataclass(frozen=True)
class DecodeLimits:
    """What a decode may cost (images.* in the config; built by the generic from_config).

    Still positional, with its old section reader, on purpose: every model table's work
    fingerprint reaches this module, so any edit of its code recomputes every decode,
    embedding and synthetic text of an existing lakehouse. Both go with the next change
    that alters what a decode does (docs/decisions.md "One way to declare a parameter")."""
    SECTION = "images"
    max_pixels: int
    max_jpeg_scans: int = 64
    formats: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP")

    @classmethod
    def from_conf(cls, images: dict) -> "DecodeLimits":
        return cls(int(images["max_pixels"]), int(images["max_jpeg_scans"]), tuple(images["formats"]))


def jpeg_scans(data: bytes) -> int:
    return data.count(SOS)


def upright(img: Image.Image) -> Image.Image:
    """The image as it is meant to be seen (EXIF orientation applied)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block leaves the pixels as they are
        return img


def reduce_factor(width: int, height: int, fit: int | None) -> int:
    """The integer factor that brings the shorter side down to [fit, 2*fit): 1 when it is
    already below 2*fit or when no fit is asked for."""
    if not fit:
        return 1
    return max(1, min(width, height) // fit)


def open_rgb(data: bytes, fit: int | None = None) -> Image.Image:
    """Stored bytes (already accepted by decode) -> upright RGB image.

    With `fit` (the consumer's input side: the encoder's crop, the captioner's input, the
    export's resize), the image is reduced as it is opened, so a batch holds small images
    and at most one full-size decode at a time: a JPEG is decoded at a reduced DCT scale
    (draft), any other format is box-reduced right after decoding. The shorter side stays
    at least `fit`, so the consumer's own resize still has the pixels it needs."""
    img = Image.open(io.BytesIO(data), formats=SAFE_FORMATS)
    if fit:
        img.draft("RGB", (fit, fit))    # JPEG only; keeps both sides >= fit
    img = upright(img).convert("RGB")
    factor = reduce_factor(img.size[0], img.size[1], fit)
    return img.reduce(factor) if factor > 1 else img


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


def decode(data: bytes | None, limits: DecodeLimits) -> Decoded:
    if not data:
        return Decoded(None, None, None, None, None, "empty")
    image_id = hashlib.sha256(data).hexdigest()
    costly = structure_reason(data)
    if costly:
        return Decoded(image_id, None, None, None, None, costly)
    # Pillow's own bomb guard would otherwise cap images.max_pixels at its default (89M).
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=limits.formats)
            width, height = img.size
            if width * height > limits.max_pixels:
                return Decoded(image_id, width, height, img.format, None, "decompression_bomb")
            fmt = img.format
            if fmt in JPEG_FORMATS and jpeg_scans(data) > limits.max_jpeg_scans:
                return Decoded(image_id, width, height, fmt, None, "too_many_scans")
            img.load()
            img = upright(img)
            width, height = img.size
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
