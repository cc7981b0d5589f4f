"""A small generated dataset, for trying the whole pipeline in seconds without any photos.

Each class draws its own kind of bright shape (circles, stripes, rectangles, triangles,
crosses, rings, diamonds, zigzags), a few at random positions, sizes and colours, on a noisy
background of a random colour. No single pixel or mean colour gives the class away, so a
model has to learn shapes. Circles against stripes come first: on the default 40 images per
class a tiny convnet passed 90% validation accuracy within two to four epochs, where circles
against rectangles was still at 50-80% after five.

Written as real JPEG files in the prepared layout, with a manifest like ``prepare_dataset``'s,
so every later step reads it the same way; built in a hidden folder and moved into place
when complete, like a prepared dataset (see ``destination.py``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.data.destination import building, check_destination
from pipeline.data.images import MIN_IMAGE_SIDE
from pipeline.data.manifest import SPLITS, build_manifest, file_entry, write_manifest
from pipeline.errors import PipelineError
from pipeline.system.atomic import write_bytes
from pipeline.system.memory import reported_available_bytes
from pipeline.system.paths import check_writable_folder

SHAPES = ("circles", "stripes", "rectangles", "triangles", "crosses", "rings", "diamonds",
          "zigzags")
TWO_CLASSES = ("cat", "dog")  # two classes keep the names every smoke run and test knows
JPEG_QUALITY = 90

_CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
# Peak memory while drawing one image: float64 noise (24 bytes a pixel) plus the uint8
# background, the drawn image and its JPEG buffer. Measured peak is below this.
BYTES_PER_PIXEL = 32


def class_names(count: int) -> list[str]:
    """The names of ``count`` generated classes: cat and dog for two, else the shapes'."""
    if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= len(SHAPES):
        raise PipelineError(f"`classes` {count!r}: give 2 to {len(SHAPES)} classes (one shape "
                            "each)")
    return list(TWO_CLASSES) if count == 2 else list(SHAPES[:count])


def write_synthetic_dataset(
    dest: Path,
    classes: Sequence[str] = TWO_CLASSES,
    sizes: tuple[int, int, int] = (40, 20, 20),
    image_size: int = 64,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write ``dest/{train,validation,test}/<class>/*.jpg`` and ``dest/manifest.json``.

    ``sizes`` is images per class for train, validation and test; class ``i`` draws
    ``SHAPES[i]``. The same arguments always give the same pixels: image ``k`` of a split and
    class is seeded by (seed, split, class, k) alone, so changing one split's size leaves the
    others' images unchanged. Names continue across splits like Kaggle ids (``cat.0.jpg`` ...).

    ``dest`` is used as given (a Python caller chose it); a command that builds it from a
    user's ``data_root`` and ``name`` checks the name with ``pipeline.system.paths.child_path``.
    """
    classes = _validated_classes(classes)
    counts = _validated_sizes(sizes)
    _check_image_size(image_size)
    dest = Path(dest).expanduser()
    check_writable_folder(dest.parent, "data_root")
    check_destination(dest, force)

    with building(dest, force) as partial:
        entries: dict[str, dict[str, list[dict]]] = {split: {} for split in SPLITS}
        for class_index, label in enumerate(classes):
            next_id = 0
            for split_index, split in enumerate(SPLITS):
                entries[split][label] = []
                for k in range(counts[split]):
                    rng = np.random.default_rng([seed, split_index, class_index, k])
                    data = _jpeg_bytes(draw_sample(SHAPES[class_index], image_size, rng))
                    path = partial / split / label / f"{label}.{next_id}.jpg"
                    next_id += 1
                    write_bytes(path, data)
                    entries[split][label].append(
                        file_entry(path, made="generated",
                                   sha256=hashlib.sha256(data).hexdigest())
                    )
        manifest = build_manifest(
            source="synthetic",
            layout="synthetic",
            selection="generated",
            seed=seed,
            requested=counts,
            classes=classes,
            splits=entries,
        )
        write_manifest(partial, manifest)
    return dest


def _check_image_size(image_size: int) -> None:
    """Refuse a side below ``MIN_IMAGE_SIDE`` or one whose drawing would not fit in memory."""
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise PipelineError(f"`image_size` {image_size!r}: must be a whole number of pixels")
    if image_size < MIN_IMAGE_SIDE:
        raise PipelineError(f"`image_size` {image_size}: must be at least {MIN_IMAGE_SIDE} px")
    available = available_memory()
    largest = int((available / 2 / BYTES_PER_PIXEL) ** 0.5)  # half: leave room for the rest
    if image_size > largest:
        needed = image_size * image_size * BYTES_PER_PIXEL
        raise PipelineError(
            f"`image_size` {image_size}: drawing one image needs about {_gb(needed)}, and "
            f"{_gb(available)} of memory is available; at most {largest} px fits "
            "(the models read 150-224 px)"
        )


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``, else all RAM).

    All RAM, not ``memory.FALLBACK_BYTES``: this only refuses sizes that cannot fit at all.
    """
    available = reported_available_bytes()
    if available is not None:
        return available
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"


def draw_sample(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size``x``size`` RGB image of 1-3 bright ``shape``s on a noisy random background."""
    base = rng.integers(0, 130, size=3)
    noise = rng.normal(0.0, 18.0, size=(size, size, 3))
    background = np.clip(base + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        colour = tuple(int(c) for c in rng.integers(150, 256, size=3))
        extent = float(rng.uniform(0.2, 0.4)) * size
        cx, cy = rng.uniform(extent / 2, size - extent / 2, size=2)
        _DRAWERS[shape](draw, float(cx), float(cy), extent, size, colour, rng)
    return image


def _circle(draw, cx, cy, extent, size, colour, rng) -> None:
    r = extent / 2
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)


def _rectangle(draw, cx, cy, extent, size, colour, rng) -> None:
    half_w, half_h = extent / 2 * rng.uniform(0.7, 1.3, size=2)
    draw.rectangle([cx - half_w, cy - half_h, cx + half_w, cy + half_h], fill=colour)


def _stripes(draw, cx, cy, extent, size, colour, rng) -> None:
    width = max(2.0, size / 20)
    horizontal = bool(rng.integers(0, 2))
    for offset in np.arange(-extent / 2, extent / 2 + 1e-6, 2.5 * width):
        if horizontal:
            y = cy + offset
            draw.rectangle([cx - extent, y, cx + extent, y + width], fill=colour)
        else:
            x = cx + offset
            draw.rectangle([x, cy - extent, x + width, cy + extent], fill=colour)


def _triangle(draw, cx, cy, extent, size, colour, rng) -> None:
    turn = rng.uniform(0, 2 * np.pi)
    angles = turn + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
    r = extent / 1.6
    draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles], fill=colour)


def _cross(draw, cx, cy, extent, size, colour, rng) -> None:
    r, arm = extent / 2, max(2.0, extent / 6)
    draw.rectangle([cx - r, cy - arm, cx + r, cy + arm], fill=colour)
    draw.rectangle([cx - arm, cy - r, cx + arm, cy + r], fill=colour)


def _ring(draw, cx, cy, extent, size, colour, rng) -> None:
    r = extent / 2
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour,
                 width=max(2, round(extent / 7)))


def _diamond(draw, cx, cy, extent, size, colour, rng) -> None:
    half_w, half_h = extent / 2 * rng.uniform(0.6, 0.9), extent / 2 * rng.uniform(1.1, 1.4)
    draw.polygon([(cx - half_w, cy), (cx, cy - half_h), (cx + half_w, cy), (cx, cy + half_h)],
                 fill=colour)


def _zigzag(draw, cx, cy, extent, size, colour, rng) -> None:
    teeth = 4
    xs = np.linspace(cx - extent / 2, cx + extent / 2, 2 * teeth + 1)
    ys = [cy + (extent / 4 if i % 2 else -extent / 4) for i in range(len(xs))]
    draw.line(list(zip(xs.tolist(), ys, strict=True)), fill=colour,
              width=max(2, round(size / 24)))


_DRAWERS = {
    "circles": _circle,
    "rectangles": _rectangle,
    "stripes": _stripes,
    "triangles": _triangle,
    "crosses": _cross,
    "rings": _ring,
    "diamonds": _diamond,
    "zigzags": _zigzag,
}


def _jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _validated_classes(classes: Sequence[str]) -> list[str]:
    names = list(classes)
    if isinstance(classes, str) or not 2 <= len(names) <= len(SHAPES):
        raise PipelineError(
            f"`classes` {classes!r}: give 2 to {len(SHAPES)} class names, e.g. ('cat', 'dog')"
        )
    for name in names:
        if not isinstance(name, str) or not _CLASS_NAME.match(name):
            raise PipelineError(
                f"`classes`: {name!r} is not a usable folder name (letters, digits, _ and -)"
            )
    if len({n.lower() for n in names}) != len(names):
        raise PipelineError(f"`classes` {','.join(names)}: names must differ (ignoring case)")
    return names


def _validated_sizes(sizes: Sequence[int]) -> dict[str, int]:
    values = list(sizes)
    if len(values) != len(SPLITS) or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values
    ):
        raise PipelineError(
            f"`sizes` {sizes!r}: give three whole numbers (train, validation, test), 0 or more"
        )
    if values[0] == 0:
        raise PipelineError("`sizes`: a dataset needs at least 1 training image per class")
    return dict(zip(SPLITS, values, strict=True))
