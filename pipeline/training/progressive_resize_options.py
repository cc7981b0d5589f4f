"""Progressive resizing's option: its help, its check, its schedule. Light (no TensorFlow):
the command line reads the help; ``pipeline.training.progressive_resize`` applies it."""

from __future__ import annotations

from pipeline.errors import PipelineError

START_SIZE_HELP = (
    "Progressive resizing: train the first half of the epochs at this image size (pixels), "
    "the rest at the run's own size; validation, the saved model and prediction always use "
    "the run's size. An epoch at 176 px took 0.6x the time of one at 240. Needs the base to "
    "train on images (--views 0, or --no-cache-top) and a pooling head. Off by default: on "
    "Oxford 17 it lowered validation accuracy."
)


def resize_schedule(start_size: int | None, image_size: int, epochs: int) -> list[int]:
    """The training size of each epoch: ``start_size`` for the first ``epochs // 2``, then
    ``image_size``; ``image_size`` throughout without a ``start_size``."""
    low = epochs // 2 if start_size else 0
    return [start_size] * low + [image_size] * (epochs - low)  # type: ignore[list-item]


def check_start_size(start_size: int | None, image_size: int, min_size: int) -> None:
    """One clear line for a start size progressive resizing cannot use."""
    if start_size is None:
        return
    if not min_size <= start_size < image_size:
        raise PipelineError(
            f"`start_size` {start_size}: give a size from {min_size} (the base's smallest) to "
            f"{image_size - 1} (below the run's {image_size} px), or leave it out"
        )
