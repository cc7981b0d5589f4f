"""The range every image size option accepts, checked before any work.

Why a bound above: a size of 100,000 pixels is accepted by every layer until the first
weight allocation runs out of memory (a 4996800512 x 512 kernel); 1,024 is far above any
size a small-data model here is trained at (the bases' own are 150 to 300) and still fits.
Below 16 no network of ours keeps a feature map. Light on purpose (no TensorFlow).
"""

from __future__ import annotations

from pipeline.errors import PipelineError

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 1024


def check_image_size(size: object, field: str = "image_size") -> None:
    """Refuse a size that is not a whole number in ``MIN_IMAGE_SIZE .. MAX_IMAGE_SIZE``;
    None (the default's own size) passes."""
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or \
            not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise PipelineError(f"`{field}` {size!r}: give a whole number of pixels from "
                            f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}")
