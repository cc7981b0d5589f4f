"""Odd image files for tests, made in a few bytes: 16-bit greys and decompression bombs."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_png_claiming(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width`` x ``height`` pixels: a decompression bomb.

    A real 1x1 PNG with its IHDR size rewritten (and its CRC fixed), so only a reader that
    trusts the header and decodes it would allocate width * height pixels.
    """
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IHDR")  # the chunk type; its length is the 4 bytes before
    fields = bytearray(data[start + 4 : start + 17])
    fields[0:8] = struct.pack(">II", width, height)
    data[start + 4 : start + 17] = fields
    data[start + 17 : start + 21] = struct.pack(">I", zlib.crc32(data[start : start + 17]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def write_16bit_png(path: Path, size: tuple[int, int] = (48, 40)) -> tuple[Path, np.ndarray]:
    """A 16-bit greyscale PNG of a left-to-right ramp, and its expected 8-bit grey levels.

    Values run over the whole 16-bit range; divided by 257 they give the 8-bit levels a
    correct reader shows (Pillow's own ``convert("RGB")`` clips them at 255: all white).
    """
    width, height = size
    ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
    pixels = np.tile(ramp, (height, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path, np.tile(np.rint(ramp / 257.0), (height, 1))
