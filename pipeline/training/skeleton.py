"""The one training skeleton every workflow calls: compile, create the run, record, fit,
evaluate, plot.

A workflow builds its model, its training batches and its run record, and hands them here
with its ``TrainingOptions`` whole; every run is then trained, saved and recorded the same
way (``pipeline.training.loop`` has the fit, evaluate and plot steps and what each saves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from pipeline.models.schedules import ScheduleOptions, compile_scheduled
from pipeline.models.training_graph import faster_training
from pipeline.runs.folder import Run, RunRecord
from pipeline.training.class_weights import class_weights_for, describe_weights
from pipeline.training.loop import train_evaluate_plot
from pipeline.training.options import TrainingOptions

Callbacks = Sequence[keras.callbacks.Callback]  # the user's, passed to ``fit`` after the run's own


def compile_for_training(
    model: keras.Model,
    num_classes: int,
    options: TrainingOptions,
    schedule: ScheduleOptions | None = None,
    *,
    steps_per_epoch: int,
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile ``model`` as ``options`` say: optimizer, peak learning rate over ``schedule``
    (default: constant), epochs, weight averaging, and a loss for the targets trained on
    (smoothed; soft where mixup or CutMix mix them).

    ``steps_per_execution`` > 1 runs that many steps per call into TensorFlow (a small head
    on cached arrays, where the per-call overhead is most of an epoch).
    """
    if options.learning_rate is None:
        raise ValueError("the workflow must fill in the learning rate before compiling")
    return compile_scheduled(
        model, num_classes, options.optimizer, options.learning_rate,
        schedule or ScheduleOptions(), steps_per_epoch=steps_per_epoch, epochs=options.epochs,
        ema_momentum=options.ema_momentum, steps_per_execution=steps_per_execution,
        label_smoothing=options.label_smoothing, soft_targets=options.mixes,
        layer_decay=options.layer_decay,
    )


def train_new_run(
    model: keras.Model,
    record: RunRecord,
    train: Any,
    evaluation: Mapping[str, Any],
    *,
    models_dir: Path,
    run_name: str | None,
    options: TrainingOptions,
    schedule: ScheduleOptions | None = None,
    steps_per_epoch: int | None = None,
    steps_per_execution: int = 1,
    callbacks: Callbacks = (),
    verbose: int | str = "auto",
) -> Run:
    """Compile ``model``, create its run folder under ``models_dir`` (or continue the run
    ``run_name`` names), write ``record``, fit on ``train``, evaluate the best model on every
    split of ``evaluation`` (``validation`` validates), plot the curves; returns the run.

    ``steps_per_epoch`` None: ``len(train)`` (cached arrays and views know their length;
    give it for a ``tf.data`` dataset). ``callbacks`` are the user's, passed to ``fit``.
    ``options.class_weight`` balanced weighs each class's examples by n / (C * n_c), the
    counts of the training split of ``record.data_dir``'s manifest (recorded in the config
    with the other options).
    """
    steps = len(train) if steps_per_epoch is None else steps_per_epoch
    weights = class_weights_for(options.class_weight, Path(record.data_dir), record.class_names)
    if weights and verbose:
        print(f"class weight {options.class_weight}: "
              f"{describe_weights(weights, record.class_names)}")
    compile_for_training(model, len(record.class_names), options, schedule,
                         steps_per_epoch=steps, steps_per_execution=steps_per_execution)
    run = Run.create(models_dir, record.kind, run_name)
    run.write_record(record)
    # A base with frozen BatchNormalization (fine-tuning) trains through its faster twin.
    with faster_training(model):
        train_evaluate_plot(model, run, train, evaluation, options, verbose,
                            callbacks=callbacks, class_weight=weights)
    return run
