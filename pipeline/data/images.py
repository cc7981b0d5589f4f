"""Checking one photo: can we decode it, is it big enough, and can TensorFlow read it as is?

A dataset of scraped photos always holds a few files that are empty, cut off, or not what
their name says (a PNG called ``.jpg``, a CMYK JPEG). Training must never meet them: a bad
file fails the input pipeline in the middle of an epoch, far from the file that caused it.
So every photo is decoded once, completely, before it enters a prepared dataset.

A photo is kept as faithfully as its format allows. A JPEG or a PNG that TensorFlow reads as
it is (8-bit RGB or grey, opaque, upright) is copied byte for byte, under the right extension
when its name said another format. Every other usable file is converted losslessly to an
8-bit RGB PNG (WebP, GIF, BMP, TIFF; a PNG with transparency, a palette or 16 bits; a CMYK
JPEG): no PNG or WebP is ever re-encoded to a lossy JPEG. The one lossy conversion is a JPEG
that only needs turning upright (EXIF orientation, as phones write): it is already lossy, and
re-encoded at quality 95 it keeps a phone photo's size, where a PNG would be 5-10 times larger.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipeline.errors import PipelineError
from pipeline.system.atomic import atomic_path

# Smaller photos carry almost no signal at the 150-180 px the models read; the smallest
# real Kaggle photo is 42x33, so 16 px rejects only thumbnails and icons.
MIN_IMAGE_SIDE = 16

# What a prepared dataset holds without conversion: JPEG or PNG data, in a colour mode that
# ``tf.io.decode_image(channels=3)`` reads as the same pixels Pillow sees (no alpha, no palette).
PLAIN_JPEG_MODES = frozenset({"RGB", "L"})
JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})
PNG_EXTENSIONS = frozenset({".png"})
# How a converted file is stored: ``PNG`` losslessly, ``JPEG`` only for a JPEG turned upright.
STORED_PNG, STORED_JPEG = "PNG", "JPEG"
# MPO is what Pillow calls a camera JPEG with extra frames appended; JPEG decoders read frame 1.
JPEG_FORMATS = frozenset({"JPEG", "MPO"})

# Pillow's own warning threshold (about 89 M pixels, a 9,500 px square; 1/4 GB as RGB):
# no camera photo comes near it, and a file whose header claims more is a decompression
# bomb (a few kilobytes that decode to gigabytes). Pillow only warns up to twice this and
# raises above; every reader here refuses above it, warning or not.
MAX_IMAGE_PIXELS = 89_478_485

_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True)
class ImageCheck:
    """What checking one file found.

    ``reason`` says why the file is unusable (``ok`` false); ``conversion_reason`` says why a
    usable file must be re-encoded (``needs_conversion`` true), and ``stored_as`` in which
    format (``PNG``, lossless, or ``JPEG``). ``suffix`` is the extension its copy in a
    dataset takes (``.png`` for PNG data named ``.jpg``). Width and height are in pixels,
    before any EXIF rotation.
    """

    path: Path
    ok: bool
    reason: str | None = None
    width: int = 0
    height: int = 0
    mode: str | None = None
    format: str | None = None
    needs_conversion: bool = False
    conversion_reason: str | None = None
    stored_as: str | None = None  # None: the bytes as they are
    suffix: str | None = None  # the dataset file's extension; None: the photo's own


class ImageTooLargeError(PipelineError):
    """An image whose header claims more than ``MAX_IMAGE_PIXELS`` pixels."""


@contextlib.contextmanager
def opened_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)``, refusing a decompression bomb before a pixel is decoded.

    Pillow's warnings (broken EXIF blocks are common in scraped photos) are silenced, except
    its decompression-bomb warning, which becomes ``ImageTooLargeError`` like the error does.
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            claimed = re.search(r"\((\d+) pixels\)", str(error))
            detail = f"{int(claimed[1]):,} pixels" if claimed else "too many pixels"
            raise _too_large(path, detail) from None
        with opened as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _too_large(path, f"{width}x{height} = {width * height:,} pixels")
            yield image


def _too_large(path: Path, detail: str) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{path}: too large to decode safely: its header claims {detail}, over the limit of "
        f"{MAX_IMAGE_PIXELS:,} (a damaged file or a decompression bomb); remove or shrink it"
    )


def check_image(path: Path) -> ImageCheck:
    """Decode ``path`` fully and say whether it can go into a dataset, and in which form."""
    path = Path(path)
    try:
        size_bytes = path.stat().st_size
    except OSError as exc:
        return ImageCheck(path, ok=False, reason=f"cannot be read ({_reason_of(exc)})")
    if size_bytes == 0:
        return ImageCheck(path, ok=False, reason="empty file (0 bytes)")

    try:
        with opened_image(path) as image:
            image.load()  # decodes every pixel: this is what catches truncated files
            image_format = image.format
            orientation = image.getexif().get(_EXIF_ORIENTATION)
            width, height = image.size
            mode = image.mode
            transparent = "transparency" in image.info
            if mode not in PLAIN_JPEG_MODES:
                to_rgb(image)  # proves the colour mode can be converted
    except ImageTooLargeError:
        return ImageCheck(path, ok=False, reason="too large to decode safely (decompression bomb)")
    except Image.UnidentifiedImageError:
        return ImageCheck(path, ok=False, reason="not an image Pillow can read")
    except OSError as exc:
        if exc.errno is not None:  # the system refused to read it (permission, I/O error)
            return ImageCheck(path, ok=False, reason=f"cannot be read ({_reason_of(exc)})")
        return ImageCheck(path, ok=False, reason=f"truncated or corrupt image data ({exc})")
    except (SyntaxError, ValueError, EOFError) as exc:
        return ImageCheck(path, ok=False, reason=f"truncated or corrupt image data ({exc})")

    if min(width, height) < MIN_IMAGE_SIDE:
        return ImageCheck(
            path,
            ok=False,
            reason=f"too small: {width}x{height} px (minimum {MIN_IMAGE_SIDE} px per side)",
            width=width,
            height=height,
            mode=mode,
            format=image_format,
        )

    stored_as, conversion = _conversion(image_format, mode, orientation, transparent)
    return ImageCheck(
        path,
        ok=True,
        width=width,
        height=height,
        mode=mode,
        format=image_format,
        needs_conversion=stored_as is not None,
        conversion_reason=conversion,
        stored_as=stored_as,
        suffix=_stored_suffix(path, image_format, stored_as),
    )


def _reason_of(error: OSError) -> str:
    """``permission denied``: the system's own words, in lower case, without the path."""
    return (error.strerror or str(error)).lower()


def _conversion(
    image_format: str | None, mode: str, orientation: int | None, transparent: bool
) -> tuple[str | None, str | None]:
    """How a usable file is stored (None: as it is, else ``PNG`` or ``JPEG``) and why."""
    if image_format in JPEG_FORMATS:
        if mode not in PLAIN_JPEG_MODES:
            # TensorFlow decodes plain CMYK too; RGB leaves no doubt about the colours.
            return STORED_PNG, (f"{mode} JPEG, stored as a lossless RGB PNG so every decoder "
                                "sees the same colours")
        if orientation not in (None, 1):
            # TensorFlow ignores EXIF orientation; without this the model sees it sideways.
            return STORED_JPEG, (f"EXIF orientation {orientation}: rotated upright (JPEG, "
                                 "quality 95)")
        return None, None
    if image_format == "PNG":
        if mode not in PLAIN_JPEG_MODES or transparent:
            what = "16-bit" if mode in _SIXTEEN_BIT_MODES else mode
            return STORED_PNG, f"{what} PNG, stored as an 8-bit RGB PNG (lossless)"
        if orientation not in (None, 1):
            return STORED_PNG, f"EXIF orientation {orientation}: rotated upright (PNG)"
        return None, None
    return STORED_PNG, f"{image_format} file, stored as a lossless PNG (TensorFlow reads PNG)"


def _stored_suffix(path: Path, image_format: str | None, stored_as: str | None) -> str | None:
    """The extension the dataset file takes, or None when the photo's own is right."""
    kind = stored_as or ("JPEG" if image_format in JPEG_FORMATS else image_format)
    own = path.suffix.lower()
    if kind == "JPEG":
        return None if own in JPEG_EXTENSIONS else ".jpg"
    return None if own in PNG_EXTENSIONS else ".png"


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit RGB: transparency composited on white, 16-bit scaled down."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        return _high_bit_depth_to_rgb(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _high_bit_depth_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's own convert() clips 16-bit values at 255, which turns most photos white.
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    if peak > 65535:
        values = values * (255.0 / peak)
    elif peak > 255:
        values = values / 257.0
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def save_as_rgb_jpeg(src: Path, dst: Path, quality: int = 95) -> None:
    """Write ``src`` to ``dst`` as an upright RGB JPEG, atomically.

    EXIF orientation is applied to the pixels (and so dropped), because TensorFlow's decoder
    ignores it; transparent areas become white, not black.
    """
    rgb = _upright_rgb(src)
    with atomic_path(dst) as tmp:
        rgb.save(tmp, format="JPEG", quality=quality)


def write_rgb_jpeg(src: Path, dst: Path, quality: int = 95) -> None:
    """``save_as_rgb_jpeg`` into a new file ``dst`` directly, with no temporary name.

    For a folder that is itself moved into place only when complete (a dataset being
    built): there a temporary name adds nothing, and beside a 250-byte name it would not fit
    in the file system's 255.
    """
    rgb = _upright_rgb(src)
    with open(dst, "xb") as handle:
        rgb.save(handle, format="JPEG", quality=quality)


def write_converted(src: Path, dst: Path, stored_as: str, quality: int = 95) -> None:
    """Write ``src`` upright as 8-bit RGB into the new file ``dst``: a lossless PNG, or a
    JPEG (``stored_as`` ``JPEG``: for a JPEG turned upright); no temporary name, as
    ``write_rgb_jpeg``."""
    if stored_as == STORED_JPEG:
        write_rgb_jpeg(src, dst, quality)
        return
    rgb = _upright_rgb(src)
    with open(dst, "xb") as handle:
        rgb.save(handle, format="PNG", compress_level=6)


def _upright_rgb(src: Path) -> Image.Image:
    with opened_image(src) as image:
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))
