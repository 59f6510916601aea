"""Refuse the structures that make Pillow's decoders slow, before Pillow sees the bytes.

Each walker reads a format's block layout (no pixel is decoded) and names what it refuses:
- PNG: thousands of chunks besides the image data (empty ancillary chunks cost Pillow
  time each);
- GIF: extension blocks over 128 KiB (Pillow joins a comment's sub-blocks quadratically,
  inside Image.open, before any size check: seconds at 4 MiB, minutes at 16);
- JPEG: floods of APPn / COM segments before the first scan;
- BMP: run-length encoded bitmaps of many pixels (Pillow decodes RLE in pure Python).
The bounds sit far above what real images use, so only crafted files meet them.
"""
from __future__ import annotations

import struct

MAX_PNG_CHUNKS = 4096
MAX_METADATA_BYTES = 1 << 20          # JPEG APPn/COM segments, in all
MAX_GIF_EXTENSION_BYTES = 128 << 10   # comments and application data, in all
MAX_JPEG_SEGMENTS = 1024
MAX_BMP_RLE_PIXELS = 16_000_000


def png_reason(data: bytes) -> str | None:
    pos, chunks = 8, 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks += kind != b"IDAT"          # image data comes in many chunks; the rest does not
        if chunks > MAX_PNG_CHUNKS:
            return "png_chunk_flood"
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def gif_reason(data: bytes) -> str | None:
    if len(data) < 13:
        return None
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    extension_bytes = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:          # trailer
            break
        if block == 0x21:          # extension: label, then sub-blocks
            pos += 2
            while pos < len(data) and data[pos]:
                extension_bytes += data[pos]
                if extension_bytes > MAX_GIF_EXTENSION_BYTES:
                    return "gif_oversized_extension"
                pos += data[pos] + 1
            pos += 1
        elif block == 0x2C:        # image: descriptor, local table, LZW size, sub-blocks
            if pos + 10 > len(data):
                break
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
            while pos < len(data) and data[pos]:
                pos += data[pos] + 1
            pos += 1
        else:
            break                  # not a block: Pillow decides what the bytes are
    return None


def jpeg_reason(data: bytes) -> str | None:
    pos, segments, metadata = 2, 0, 0
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:         # fill byte
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:   # start of scan, end of image
            break
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segments += 1
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata += length
        if segments > MAX_JPEG_SEGMENTS or metadata > MAX_METADATA_BYTES:
            return "jpeg_marker_flood"
        pos += 2 + length
    return None


def bmp_reason(data: bytes) -> str | None:
    if len(data) < 34 or struct.unpack("<I", data[14:18])[0] < 40:
        return None                # an OS/2 header has no compression field
    width, height = struct.unpack("<ii", data[18:26])
    compression = struct.unpack("<I", data[30:34])[0]
    if compression in (1, 2) and abs(width) * abs(height) > MAX_BMP_RLE_PIXELS:
        return "bmp_rle_too_large"
    return None


WALKERS = ((b"\x89PNG\r\n\x1a\n", png_reason), (b"GIF8", gif_reason), (b"\xff\xd8", jpeg_reason),
           (b"BM", bmp_reason))


def structure_reason(data: bytes) -> str | None:
    """Why the bytes are refused before decoding, or None."""
    for magic, walker in WALKERS:
        if data.startswith(magic):
            try:
                return walker(data)
            except (struct.error, IndexError):
                return None        # malformed: Pillow names it (corrupt, truncated)
    return None
