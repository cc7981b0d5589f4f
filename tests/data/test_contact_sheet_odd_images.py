"""Contact sheets read thumbnails through the one loader: a bomb is a grey square, not a crash."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.data.contact_sheet import THUMBNAIL_SIDE, _thumbnail, write_contact_sheet
from tests.odd_images import write_16bit_png, write_png_claiming


def test_a_bomb_shows_grey_and_a_16_bit_scan_shows_its_levels(tmp_path, open_png):
    bomb = write_png_claiming(tmp_path / "bomb.png", 30_000, 30_000)
    scan, expected = write_16bit_png(tmp_path / "scan.png", size=(64, 32))

    np.testing.assert_array_equal(_thumbnail(bomb), np.full((THUMBNAIL_SIDE,) * 2 + (3,), 128))
    np.testing.assert_array_equal(_thumbnail(scan)[..., 0], expected)

    out = write_contact_sheet([(bomb, "bomb"), (scan, "scan")], tmp_path / "sheet.png")
    open_png(out, (300, 200))
    with Image.open(out) as sheet:
        assert sheet.size[0] > sheet.size[1]  # two thumbnails side by side
