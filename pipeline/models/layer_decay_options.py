"""The layer-wise learning-rate decay option: its default and its check, light (no Keras) for
the command line; the decay itself is ``pipeline.models.layer_decay``."""

from __future__ import annotations

import math

from pipeline.errors import PipelineError

NO_LAYER_DECAY = 1.0  # every layer at the full rate

LAYER_DECAY_HELP = (
    "Layer-wise learning-rate decay: the head and the layers above the base's numbered blocks "
    "train at the full rate, the last block at D times it, each block below at D times the "
    "one above (e.g. 0.8); 1: every layer at the full rate.")


def check_layer_decay(decay: float) -> None:
    """A decay is a factor per stage: above 0, at most 1 (1: off)."""
    if isinstance(decay, bool) or not isinstance(decay, int | float) or not (
            0 < decay <= 1 and math.isfinite(decay)):
        raise PipelineError(f"`layer_decay` {decay!r}: give a factor per stage above 0 and at "
                            "most 1, e.g. 0.8 (1: every layer at the full learning rate)")
