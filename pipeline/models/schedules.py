"""Learning-rate schedules for small data: constant, or cosine decay after a linear warm-up.

Why a schedule: on 2,000 photos a head or an unfrozen block reaches its best validation
loss within a few epochs and then memorises. A short warm-up keeps the first, noisy
gradients of a fresh head from wrecking pretrained weights; cosine decay then lowers the
step size smoothly, so the last epochs refine instead of oscillate.

Light at import (Keras is imported on use): the command line reads ``SCHEDULES`` and the
defaults of ``ScheduleOptions`` while it builds its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.errors import PipelineError

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class ScheduleOptions:
    """How the learning rate moves over training: ``schedule`` and its warm-up in epochs."""

    schedule: str = "constant"  # constant | cosine (cosine: warm-up, then decay to 0)
    warmup_epochs: float = 0.0  # linear warm-up from 0 (cosine only)

    def validate(self, epochs: int) -> None:
        if self.schedule not in SCHEDULES:
            raise PipelineError(f"`schedule` {self.schedule!r}: choose one of "
                                f"{', '.join(SCHEDULES)}")
        if self.warmup_epochs < 0 or self.warmup_epochs >= max(epochs, 1):
            raise PipelineError(
                f"`warmup_epochs` {self.warmup_epochs}: give a number of epochs from 0 to below "
                f"`epochs` ({epochs})"
            )


def learning_rate_schedule(
    schedule: str,
    learning_rate: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
) -> Any:
    """What an optimizer's ``learning_rate`` takes: a float (constant) or a schedule.

    ``cosine``: linear warm-up from 0 to ``learning_rate`` over ``warmup_epochs`` epochs, then
    cosine decay to 0 at the end of ``epochs`` (per optimizer step, not per epoch).
    """
    import keras

    ScheduleOptions(schedule, warmup_epochs).validate(epochs)
    if schedule == "constant":
        return learning_rate
    total = max(1, steps_per_epoch * epochs)
    warmup = round(steps_per_epoch * warmup_epochs)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - warmup), warmup_target=learning_rate, warmup_steps=warmup
    )


def scheduled_optimizer(
    name: str, learning_rate: float, options: ScheduleOptions, *, steps_per_epoch: int,
    epochs: int, ema_momentum: float | None = None,
) -> Any:
    """A fresh optimizer ``name``, its rate following ``options`` (peak ``learning_rate``),
    averaging the weights with ``ema_momentum`` when given."""
    from pipeline.models.optimizers import make_optimizer

    optimizer = make_optimizer(name, learning_rate, ema_momentum)  # checks name, rate, momentum
    rate = learning_rate_schedule(options.schedule, learning_rate,
                                  steps_per_epoch=steps_per_epoch, epochs=epochs,
                                  warmup_epochs=options.warmup_epochs)
    if isinstance(rate, float):
        return optimizer
    return type(optimizer).from_config({**optimizer.get_config(), "learning_rate": rate})


def compile_scheduled(
    model: Any, num_classes: int, optimizer: str, learning_rate: float, options: ScheduleOptions,
    *, steps_per_epoch: int, epochs: int, steps_per_execution: int = 1,
    ema_momentum: float | None = None, label_smoothing: float = 0.0,
    soft_targets: bool = False, layer_decay: float = 1.0,
) -> Any:
    """``compile_classifier`` with a scheduled learning rate (and the loss's
    ``label_smoothing``; ``soft_targets``: a loss and an accuracy that take mixed training
    targets too, ``pipeline.models.losses``; ``layer_decay`` below 1: each stage of the base
    at that factor of the rate of the stage above, ``pipeline.models.layer_decay``).

    ``steps_per_execution`` > 1 runs that many training steps per call into TensorFlow: for
    a small head on cached arrays the per-call overhead is most of an epoch's time.
    """
    from pipeline.models.classifier import active_jit_compile
    from pipeline.models.layer_decay import with_layer_decay
    from pipeline.models.losses import accuracy_for, loss_for

    model.compile(
        optimizer=with_layer_decay(
            scheduled_optimizer(optimizer, learning_rate, options,
                                steps_per_epoch=steps_per_epoch, epochs=epochs,
                                ema_momentum=ema_momentum),
            model, layer_decay),
        loss=loss_for(num_classes, label_smoothing, soft_targets=soft_targets),
        metrics=[accuracy_for(soft_targets=soft_targets)],
        jit_compile=active_jit_compile(),
        steps_per_execution=steps_per_execution,
    )
    return model
