"""Learning-rate schedules for small data: constant, or cosine decay after a linear warm-up.

Why a schedule: on 2,000 photos a head or an unfrozen block reaches its best validation
loss within a few epochs and then memorises. A short warm-up keeps the first, noisy
gradients of a fresh head from wrecking pretrained weights; cosine decay then lowers the
step size smoothly, so the last epochs refine instead of oscillate.
"""

from __future__ import annotations

import keras

from pipeline.errors import PipelineError

SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(
    schedule: str,
    learning_rate: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """What an optimizer's ``learning_rate`` takes: a float (constant) or a schedule.

    ``cosine``: linear warm-up from 0 to ``learning_rate`` over ``warmup_epochs`` epochs, then
    cosine decay to 0 at the end of ``epochs`` (per optimizer step, not per epoch).
    """
    if schedule not in SCHEDULES:
        raise PipelineError(f"`schedule` {schedule!r}: choose one of {', '.join(SCHEDULES)}")
    if warmup_epochs < 0 or warmup_epochs >= max(epochs, 1):
        raise PipelineError(
            f"`warmup_epochs` {warmup_epochs}: give a number of epochs from 0 to below `epochs` "
            f"({epochs})"
        )
    if schedule == "constant":
        return learning_rate
    total = max(1, steps_per_epoch * epochs)
    warmup = round(steps_per_epoch * warmup_epochs)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - warmup), warmup_target=learning_rate, warmup_steps=warmup
    )
