"""The one image reader: what every command sees of an odd file, or one line naming it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.image_file import load_image_array, load_photo, read_rgb_image
from pipeline.data.images import MAX_IMAGE_PIXELS, check_image, save_as_rgb_jpeg
from pipeline.errors import PipelineError
from tests.odd_images import write_16bit_png, write_png_claiming


def test_a_16_bit_png_is_scaled_down_not_clipped_to_white(tmp_path):
    path, expected = write_16bit_png(tmp_path / "scan.png", size=(48, 40))
    assert Image.open(path).mode.startswith("I")  # really 16 bits per pixel
    pixels = np.asarray(read_rgb_image(path))
    assert pixels.shape == (40, 48, 3)
    np.testing.assert_array_equal(pixels[..., 0], expected)
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])  # grey
    resized = load_image_array(path, 48)
    assert resized[:, :4].mean() < 10 and resized[:, -4:].mean() > 245  # a ramp, not all white
    # prepare's conversion and the commands' reader agree
    save_as_rgb_jpeg(path, tmp_path / "scan.jpg")
    converted = np.asarray(read_rgb_image(tmp_path / "scan.jpg"), dtype=float)
    assert np.abs(converted - pixels).mean() < 3


@pytest.mark.parametrize("side", [30_000, 10_000])  # above Pillow's error / only its warning
def test_a_decompression_bomb_is_refused_by_its_header(tmp_path, side):
    path = write_png_claiming(tmp_path / "bomb.png", side, side)
    assert path.stat().st_size < 200 and side * side > MAX_IMAGE_PIXELS
    for read in (read_rgb_image, lambda p: load_image_array(p, 32), lambda p: load_photo(p, 64)):
        with pytest.raises(PipelineError, match=r"bomb\.png: too large to decode safely") as err:
            read(path)
        assert "\n" not in str(err.value) and f"{side * side:,} pixels" in str(err.value)
    check = check_image(path)
    assert not check.ok and "decompression bomb" in check.reason


def test_a_large_but_honest_header_is_read(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 20), (10, 200, 30)).save(path)
    assert load_photo(path, 300).shape == (2, 300, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"", "not a readable image"), (b"GIF89a broken", "not a readable")],
)
def test_unreadable_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "photo.gif"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PipelineError, match=rf"photo\.gif: {message}"):
        read_rgb_image(path)


def test_transparency_is_white_and_orientation_upright(tmp_path):
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[:, :15] = (0, 0, 255, 255)
    Image.fromarray(rgba).save(tmp_path / "half.png")
    pixels = np.asarray(read_rgb_image(tmp_path / "half.png"))
    assert tuple(pixels[5, 2]) == (0, 0, 255) and tuple(pixels[5, 25]) == (255, 255, 255)

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (200, 0, 0)).save(tmp_path / "turned.jpg", exif=exif)
    assert read_rgb_image(tmp_path / "turned.jpg").size == (20, 40)
