"""Label smoothing's default and its valid range: light (no Keras), for the options and
the loss alike (``pipeline.models.losses``)."""

from __future__ import annotations

from pipeline.errors import PipelineError

NO_SMOOTHING = 0.0


def check_label_smoothing(value: float) -> None:
    """Smoothing is the share of the target spread over every class: in [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise PipelineError(f"`label_smoothing` must be in [0, 1), e.g. 0.1, got {value}")
