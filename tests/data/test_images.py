"""check_image: which files are usable, which must be converted, and what conversion gives."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import (
    MIN_IMAGE_SIDE,
    check_image,
    save_as_rgb_jpeg,
    to_rgb,
    write_converted,
)


def test_plain_rgb_jpeg_is_used_as_it_is(tmp_path, write_image):
    check = check_image(write_image(tmp_path / "cat.0.jpg", size=(48, 40)))
    assert check.ok and not check.needs_conversion
    assert (check.width, check.height, check.mode, check.format) == (48, 40, "RGB", "JPEG")
    assert check.reason is None


def test_camera_jpeg_with_extra_frames_needs_no_conversion(tmp_path, write_image):
    path = tmp_path / "camera.jpg"
    with Image.open(write_image(tmp_path / "first.jpg")) as first:
        first.save(path, format="MPO", save_all=True, append_images=[first.copy()])
    check = check_image(path)
    assert check.format == "MPO" and check.ok and not check.needs_conversion


def test_grayscale_jpeg_needs_no_conversion(tmp_path, write_image):
    check = check_image(write_image(tmp_path / "grey.jpeg", mode="L"))
    assert check.ok and check.mode == "L" and not check.needs_conversion


@pytest.mark.parametrize(
    ("name", "mode", "fmt", "suffix", "why"),
    [
        ("cmyk.jpg", "CMYK", "JPEG", ".png", "CMYK JPEG, stored as a lossless RGB PNG"),
        ("alpha.png", "RGBA", "PNG", None, "RGBA PNG"),
        ("grey_alpha.png", "LA", "PNG", None, "LA PNG"),
        ("palette.gif", "P", "GIF", ".png", "GIF file"),
        ("bitmap.bmp", "RGB", "BMP", ".png", "BMP file"),
        ("photo.webp", "RGB", "WEBP", ".png", "WEBP file, stored as a lossless PNG"),
        ("scan.tif", "RGB", "TIFF", ".png", "TIFF file"),
    ],
)
def test_files_tensorflow_cannot_read_as_they_are_become_lossless_pngs(
    tmp_path, write_image, name, mode, fmt, suffix, why
):
    path = write_image(tmp_path / name, mode=mode, fmt=fmt)
    check = check_image(path)
    assert check.ok and check.needs_conversion and check.stored_as == "PNG"
    assert why in check.conversion_reason and check.suffix == suffix

    out = tmp_path / "out" / "converted.png"
    out.parent.mkdir()
    write_converted(path, out, check.stored_as)
    with Image.open(out) as converted, Image.open(path) as original:
        assert (converted.format, converted.mode, converted.size) == ("PNG", "RGB", (48, 40))
        # Lossless: exactly the pixels Pillow decodes from the photo (made RGB), no JPEG loss.
        assert np.array_equal(np.asarray(converted), np.asarray(to_rgb(original)))
    assert not check_image(out).needs_conversion


@pytest.mark.parametrize(
    ("name", "fmt", "suffix"),
    [("plain.png", "PNG", None), ("png_inside.jpg", "PNG", ".png"),
     ("jpeg_inside.png", "JPEG", ".jpg"), ("grey.png", "PNG", None)],
)
def test_a_plain_png_or_a_misnamed_file_is_kept_byte_for_byte(tmp_path, write_image, name, fmt,
                                                              suffix):
    path = write_image(tmp_path / name, fmt=fmt, mode="L" if name.startswith("grey") else "RGB")
    check = check_image(path)
    assert check.ok and not check.needs_conversion and check.stored_as is None
    assert check.suffix == suffix  # the right extension for the bytes, nothing re-encoded


def test_transparency_becomes_white_not_black(tmp_path):
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[:, :20] = (200, 0, 0, 255)  # left half opaque red, right half fully transparent
    src = tmp_path / "half.png"
    Image.fromarray(rgba).save(src)

    save_as_rgb_jpeg(src, tmp_path / "half.jpg")
    with Image.open(tmp_path / "half.jpg") as image:
        left, right = image.getpixel((5, 20)), image.getpixel((35, 20))
    assert left[0] > 150 and left[1] < 60
    assert min(right) > 240


def test_sixteen_bit_png_is_scaled_not_clipped_to_white(tmp_path):
    ramp = np.linspace(0, 65535, 48 * 40).reshape(40, 48).astype(np.uint16)
    src = tmp_path / "deep.png"
    Image.fromarray(ramp).save(src)
    check = check_image(src)
    assert check.ok and check.needs_conversion

    save_as_rgb_jpeg(src, tmp_path / "deep.jpg")
    with Image.open(tmp_path / "deep.jpg") as image:
        values = np.asarray(image.convert("L"), dtype=float)
    assert values[0, :5].mean() < 20 and values[-1, -5:].mean() > 235
    assert 100 < values.mean() < 155  # a ramp, not a white sheet


def test_exif_rotated_photo_is_converted_upright(tmp_path, write_image):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = write_image(tmp_path / "phone.jpg", size=(60, 40), exif=exif.tobytes())
    check = check_image(path)
    assert check.ok and check.needs_conversion and "orientation" in check.conversion_reason

    save_as_rgb_jpeg(path, tmp_path / "upright.jpg")
    with Image.open(tmp_path / "upright.jpg") as image:
        assert image.size == (40, 60)


def test_truncated_jpeg_is_rejected(tmp_path, write_image):
    path = write_image(tmp_path / "cut.jpg", size=(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    check = check_image(path)
    assert not check.ok
    assert "truncated or corrupt" in check.reason


def test_empty_file_is_rejected(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    check = check_image(tmp_path / "empty.jpg")
    assert not check.ok and check.reason == "empty file (0 bytes)"


def test_text_named_jpg_is_rejected(tmp_path):
    (tmp_path / "note.jpg").write_text("this is not a photo\n")
    check = check_image(tmp_path / "note.jpg")
    assert not check.ok and "not an image" in check.reason


def test_thumbnail_smaller_than_the_minimum_is_rejected(tmp_path, write_image):
    side = MIN_IMAGE_SIDE - 1
    check = check_image(write_image(tmp_path / "tiny.jpg", size=(64, side)))
    assert not check.ok
    assert f"64x{side} px" in check.reason


def test_missing_file_is_reported_not_raised(tmp_path):
    check = check_image(tmp_path / "gone.jpg")
    assert not check.ok and check.reason == "cannot be read (no such file or directory)"
