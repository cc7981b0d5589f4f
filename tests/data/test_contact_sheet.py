"""A contact sheet: each photo in its cell, reading order, a caption above it, nothing cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.contact_sheet import THUMBNAIL_SIDE, write_contact_sheet

COLOURS = ((230, 30, 30), (30, 200, 30), (30, 30, 230), (230, 200, 30), (200, 30, 200))
SIZES = ((60, 40), (40, 60), (300, 150), (50, 50), (150, 300))  # (width, height)


def _solid_photos(folder: Path) -> list[Path]:
    paths = []
    for index, (colour, size) in enumerate(zip(COLOURS, SIZES, strict=True)):
        path = folder / f"photo_{index}.png"
        Image.new("RGB", size, colour).save(path)
        paths.append(path)
    return paths


def _box(pixels: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the pixels of exactly ``colour``, checked to be solid."""
    rows, columns = np.nonzero(np.all(pixels == colour, axis=-1))
    assert rows.size, f"{colour} is not on the sheet"
    top, left = rows.min(), columns.min()
    height, width = rows.max() - top + 1, columns.max() - left + 1
    assert rows.size == width * height, f"{colour} is not one solid rectangle"
    return int(left), int(top), int(width), int(height)


def _shrunk(size: tuple[int, int]) -> tuple[int, int]:
    image = Image.new("RGB", size)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return image.size


def test_each_cell_shows_its_photo_under_its_caption_in_reading_order(tmp_path, open_png):
    photos = _solid_photos(tmp_path)
    items = [(path, f"photo {index}\ntrue cat, predicted dog (0.9{index})")
             for index, path in enumerate(photos)]
    out = write_contact_sheet(items, tmp_path / "sheet.png", title="Five photos", columns=2)
    pixels = open_png(out, (2 * THUMBNAIL_SIDE, 3 * THUMBNAIL_SIDE)).astype(np.uint8)

    boxes = [_box(pixels, colour) for colour in COLOURS]
    for (_, _, width, height), size in zip(boxes, SIZES, strict=True):
        assert (width, height) == _shrunk(size)  # the photo's own pixels, aspect kept
    tops = [top for _, top, _, _ in boxes]
    assert tops[0] == tops[1] < tops[2] == tops[3] < tops[4]  # two a row, top-aligned
    assert boxes[0][0] < boxes[1][0] and boxes[2][0] < boxes[3][0]  # left to right
    for left, top, width, _ in boxes:  # the two caption lines just above each photo
        caption = pixels[top - 36 : top, left : left + width].min(axis=-1)
        assert (caption < 100).sum() > 50, "a caption is missing"
    assert (pixels[: min(tops) - 36].min(axis=-1) < 100).any(), "the title is missing"


def test_a_long_caption_widens_its_column_and_a_bad_file_shows_grey(tmp_path, open_png):
    photo = _solid_photos(tmp_path)[0]
    short = write_contact_sheet([(photo, "cat")] * 2, tmp_path / "short.png")
    long = write_contact_sheet([(photo, "cat " * 40), (tmp_path / "missing.jpg", "gone")],
                               tmp_path / "long.png")
    with Image.open(short) as narrow, Image.open(long) as wide:
        assert wide.width > narrow.width + 2 * 200  # each column as wide as the caption
    grey = _box(open_png(long, (600, 200)).astype(np.uint8), (128, 128, 128))
    assert grey[2:] == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)


def test_an_empty_sheet_says_so(tmp_path, open_png):
    out = write_contact_sheet([], tmp_path / "none.png", title="Mistakes",
                              empty_text="no misclassified images")
    pixels = open_png(out, (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    assert (pixels.min(axis=-1) < 100).sum() > 200  # the title and the empty text
