"""The drop-path (stochastic depth) option: its default, help and check, light (no Keras) for
the command line; the rewrite of a model's residual blocks is ``pipeline.models.drop_path``."""

from __future__ import annotations

import math

from pipeline.errors import PipelineError

NO_DROP_PATH = 0.0  # every residual block kept: a plain add

DROP_PATH_HELP = (
    "Stochastic depth (drop path): in training, each residual block that --unfreeze thaws "
    "skips its branch for an image with a probability rising with depth to R at the last "
    "block (timm's drop_path), e.g. 0.1; frozen blocks always add. Needs residual blocks "
    "among those thawed, e.g. --unfreeze all (the top block of efficientnet_lite*, "
    "efficientnet_b0 and mobilenet_v2 has none, vgg16 none at all). 0: off.")


def check_drop_path(rate: float) -> None:
    """A drop-path rate is the last block's drop probability: at least 0, below 1 (0: off)."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not (
            0 <= rate < 1 and math.isfinite(rate)):
        raise PipelineError(f"`drop_path` {rate!r}: give the last residual block's drop "
                            "probability, at least 0 and below 1, e.g. 0.1 (0: off)")
