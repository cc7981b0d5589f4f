"""The steps of the training skeleton (``pipeline.training.skeleton``): augmentation, fit,
evaluate, plot.

Each step is one function, so every workflow saves the same artefacts the same way:
history after every epoch, the best model (atomically), the last epoch's model and optimizer
state, TensorBoard logs, the final model, metrics of the best model per split, the curves.

Every way a run can end is recorded in the run and reaches the exit status the same way,
for every workflow (they all train through ``fit_into_run``):

- completed: evaluated and plotted;
- interrupted (Ctrl-C, or SIGTERM turned into ``pipeline.system.interrupts.Terminated``): the
  epochs done stay saved; giving the same ``run_name`` again continues from ``last.keras``;
- failed, a loss that is not finite: stopped at once, the last good checkpoints kept, no
  ``final.keras`` (its weights are NaN);
- failed, a full disk (or another file-system error a user can fix): one-line error.

The first two are absorbed, so the workflow still finishes the run's files, and deferred to
the command line (``pipeline.system.interrupts``), which exits 130/143 or 2 once the command
returns.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.pca_color import rgb_principal_components
from pipeline.devices.distribute import peer_failures
from pipeline.devices.strategies import active_distribution
from pipeline.errors import PipelineError
from pipeline.models.classifier import active_jit_compile
from pipeline.models.saving import load_model, save_model
from pipeline.models.weight_averaging import (
    averaged_weights,
    end_validation_swap,
    validation_callbacks,
)
from pipeline.plots.curves import plot_runs
from pipeline.runs.folder import (
    BEST_MODEL,
    COMPLETED,
    CURVES,
    FAILED,
    FINAL_MODEL,
    INTERRUPTED,
    LAST_MODEL,
    LOGS,
    Run,
)
from pipeline.system import interrupts
from pipeline.system.paths import disk_error
from pipeline.training.callbacks import (
    LastCheckpoint,
    ScalarLogs,
    StopOnNonFinite,
    StopWhenSignalled,
)
from pipeline.training.mixing import mixed
from pipeline.training.mixing_options import describe_mixing
from pipeline.training.options import TrainingOptions


def augmentation_layer(
    options: AugmentConfig, train_images: Iterable[tuple[Any, Any]], seed: int
) -> keras.Layer:
    """The augmentation layers of ``options``; PCA colour shift fitted on ``train_images``."""
    pca = None
    if options.pca_color:
        pca = rgb_principal_components((np.asarray(images) for images, _ in train_images),
                                       seed=seed)
    return build_augmentation(options, pca, seed=seed)


def augmentation_in_model(options: AugmentConfig) -> bool:
    """Whether augmentation goes into the model (else into tf.data): ``options.placement``."""
    if options.placement == "auto":
        return bool(tf.config.list_logical_devices("GPU"))
    return options.placement == "model"


def augmented(dataset: tf.data.Dataset, layer: keras.Layer | None) -> tf.data.Dataset:
    """``dataset`` of (images, labels) batches with ``layer`` applied in training mode; as it
    is when ``layer`` is None (augmentation asked for with every part of it turned off)."""
    if layer is None:
        return dataset
    return dataset.map(lambda images, labels: (layer(images, training=True), labels),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def augmented_and_mixed(
    dataset: tf.data.Dataset, augmentation: keras.Layer | None, options: TrainingOptions,
    num_classes: int, verbose: int | str = 0,
) -> tf.data.Dataset:
    """Training batches of ``dataset`` augmented by ``augmentation`` (None: as they are),
    then mixed as ``options.mixup`` and ``options.cutmix`` say, both in the tf.data pipeline:
    mixing needs the labels, which a model's layers never see, and comes after augmentation
    (``pipeline.training.mixing``)."""
    dataset = augmented(dataset, augmentation)
    if options.mixes and verbose:
        print(describe_mixing(options))
    return mixed(dataset, num_classes, options)


class HistoryWriter(keras.callbacks.Callback):
    """Writes the run's history (JSON and CSV) after every epoch, so nothing is lost on a stop."""

    def __init__(self, run: Run, history: dict[str, list[float]] | None = None) -> None:
        super().__init__()
        self.run = run
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            if key == "learning_rate":
                continue
            self.history.setdefault(key, []).append(float(value))
        self.run.write_history(self.history)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever the monitored value improves (atomically, unlike Keras').

    ``mode`` ``auto`` decides as Keras' ``MonitorCallback`` does: a loss is minimised, a
    compiled metric is followed the way it says is better (accuracy, AUC: up), and a name
    with ``acc`` or ``auc`` in it is maximised (Keras 2's rule) before the metrics exist.
    """

    def __init__(self, path: Path, monitor: str = "val_loss", mode: str = "auto") -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode {mode!r}: choose auto, min or max")
        self.path, self.monitor, self.mode = path, monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.mode == "auto":
            self.mode = monitor_mode(self.monitor, self.model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        better = self.best is None or (value < self.best if self.mode == "min"
                                       else value > self.best)
        if better:
            self.best, self.best_epoch = float(value), epoch + 1
            with averaged_weights(self.model):  # what was validated (weight averaging)
                save_model(self.model, self.path)


def monitor_mode(monitor: str, model: keras.Model) -> str:
    """``min`` or ``max`` for ``monitor`` (``val_`` prefix allowed), from the metric itself."""
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return "min"
    metrics = []
    for metric in getattr(model, "metrics", []):
        metrics.extend(getattr(metric, "metrics", None) or [metric])  # compiled metric lists
    for metric in metrics:
        if metric.name == name and getattr(metric, "_direction", None) in ("up", "down"):
            return "max" if metric._direction == "up" else "min"
    if "acc" in name or "auc" in name:
        return "max"
    raise ValueError(f"cannot tell whether {monitor!r} should go up or down; pass mode")


@dataclass(frozen=True)
class FitOutcome:
    """What happened: epochs run, whether the user stopped it, the best epoch, and the run's
    ``status`` (completed, interrupted or failed) with the ``reason`` when it did not complete."""

    epochs_run: int
    interrupted: bool
    best_epoch: int | None
    best_value: float | None
    status: str = COMPLETED
    reason: str | None = None


@dataclass(frozen=True)
class ResumePoint:
    """Where a continued run picks up: epochs done, their history, the best so far."""

    epoch: int = 0
    history: dict[str, list[float]] | None = None
    best_epoch: int | None = None
    best_value: float | None = None


def resume_point(model: keras.Model, run: Run, monitor: str = "val_loss") -> ResumePoint:
    """Load ``last.keras`` (weights and optimizer state) into ``model`` if ``run`` is being
    continued; the epochs done, their history and the best epoch so far. A fresh run: epoch 0.
    """
    record = run.record()
    last = run.file(LAST_MODEL)
    if not run.resuming or not record.last_epoch or not last.is_file():
        return ResumePoint()
    model.optimizer.build(model.trainable_variables)  # its state loads into built variables
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(last)
        except (ValueError, OSError) as error:
            caught.append(error)  # type: ignore[arg-type]
    mismatch = [str(w.message if hasattr(w, "message") else w) for w in caught
                if "Skipping" in str(getattr(w, "message", w)) or isinstance(w, Exception)]
    if mismatch:
        raise PipelineError(f"{last}: cannot continue this run, its model differs from the one "
                            f"built now ({mismatch[0].splitlines()[0]}); choose another `run_name`")
    epoch = record.last_epoch
    history = {k: v[:epoch] for k, v in run.read_history().items()} if epoch else {}
    best_epoch = record.best_epoch if record.best_epoch and record.best_epoch <= epoch else None
    values = history.get(monitor, [])
    best_value = values[best_epoch - 1] if best_epoch and best_epoch <= len(values) else None
    if best_value is None or not run.file(BEST_MODEL).is_file():
        best_epoch = best_value = None
    return ResumePoint(epoch, history, best_epoch, best_value)


def fit_into_run(
    model: keras.Model,
    run: Run,
    train: Any,
    validation: Any,
    *,
    epochs: int,
    early_stopping: int | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    class_weight: Mapping[int, float] | None = None,
) -> FitOutcome:
    """Train ``model`` and leave history, logs, ``best.keras`` and ``final.keras`` in ``run``.

    ``class_weight`` (label -> weight of its examples in the training loss; None: all 1) goes
    to Keras' ``fit``, which applies it as sample weights to every input kind used here
    (arrays, ``PyDataset``, ``tf.data``); the validation loss stays unweighted.

    A run being continued (``run.resuming``) starts from its ``last.keras`` at the epoch after
    it, its history carried on. Ctrl-C or SIGTERM ends training cleanly: the epochs already
    done stay saved, the model as it stands is saved as ``final.keras``, the run is marked
    ``interrupted`` and the stop is deferred to the command line. A loss that is not finite
    stops training at once; the run is marked ``failed`` (no ``final.keras``) and a
    ``PipelineError`` is deferred. A full disk raises a one-line ``PipelineError`` now.
    """
    record_devices(run)
    start = resume_point(model, run)
    if start.epoch and verbose:
        print(f"continuing {run.path} after epoch {start.epoch}")
    guard = StopOnNonFinite()
    writer = HistoryWriter(run, start.history)
    checkpoint = BestCheckpoint(run.file(BEST_MODEL))
    checkpoint.best, checkpoint.best_epoch = start.best_value, start.best_epoch
    all_callbacks = [StopWhenSignalled(), guard, writer, checkpoint,
                     LastCheckpoint(run, guard, checkpoint),
                     ScalarLogs(run.file(LOGS)), *validation_callbacks(model), *(callbacks or ())]
    if early_stopping:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping, verbose=1)
        )
    stop: KeyboardInterrupt | None = None
    status, reason = COMPLETED, None
    try:
        try:
            with peer_failures():  # a cluster's worker lost: one line, not a stack
                model.fit(train, validation_data=validation, epochs=epochs,
                          callbacks=all_callbacks, verbose=verbose,
                          shuffle=False,  # the training data reshuffles itself
                          initial_epoch=start.epoch,
                          class_weight=dict(class_weight) if class_weight else None)
            interrupts.raise_swallowed()  # a stop lost in the last epoch's saves
        except KeyboardInterrupt as error:
            interrupts.handled()
            end_validation_swap(all_callbacks)
            stop, status = error, INTERRUPTED
            reason = f"stopped by {interrupts.describe(error)}"
        if guard.problem is not None:
            status, reason = FAILED, guard.problem
        else:  # a diverged model is not saved: its weights are NaN
            with averaged_weights(model):  # Keras' ``fit`` put the average in on completion
                save_model(model, run.file(FINAL_MODEL))
        epochs_run = len(next(iter(writer.history.values()), []))
        run.finish(status, epochs_run=epochs_run, best_epoch=checkpoint.best_epoch,
                   stop_reason=reason)
        if status == COMPLETED:
            run.file(LAST_MODEL).unlink(missing_ok=True)  # only an unfinished run resumes
    except OSError as error:
        problem = disk_error(error, run.path)
        if problem is None:
            raise
        with contextlib.suppress(OSError):
            run.finish(FAILED, stop_reason=str(problem), best_epoch=checkpoint.best_epoch)
        raise problem from None
    if stop is not None:
        print(f"\nInterrupted ({interrupts.describe(stop)}): {epochs_run} epochs kept in "
              f"{run.path}; the same command with run name {run.name} continues it.",
              file=sys.stderr)
        interrupts.defer(stop)
    if status == FAILED:
        interrupts.defer(PipelineError(
            f"{run.path}: training failed: {reason}; the model diverged, lower `learning_rate` "
            "(" + (f"{BEST_MODEL} of epoch {checkpoint.best_epoch} is kept"
                   if checkpoint.best_epoch else "no model was saved") + ")"
        ))
    return FitOutcome(epochs_run, stop is not None, checkpoint.best_epoch, checkpoint.best,
                      status, reason)


def record_devices(run: Run) -> None:
    """Record the strategy, replicas and XLA choice the model trains under (set by
    ``pipeline.training.context``; without it: TensorFlow's default, one replica)."""
    distribution = active_distribution()
    jit = active_jit_compile()
    run.update_record(
        strategy=distribution.kind if distribution is not None else "default",
        replicas=distribution.replicas if distribution is not None else 1,
        jit=None if jit == "auto" else bool(jit),
    )


def evaluate_into_run(
    run: Run, splits: Mapping[str, Any], which: str = "best"
) -> dict[str, dict[str, float]]:
    """Evaluate the saved ``best`` (or ``final``) model on each split; store in metrics.json."""
    path = run.model_path(which)
    model = load_model(path, compile=True)
    results = {}
    for split, dataset in splits.items():
        metrics = model.evaluate(dataset, verbose=0, return_dict=True)
        run.write_metrics(split, metrics)
        results[split] = {k: float(v) for k, v in metrics.items()}
    run.update_record(evaluated_model=path.name)
    return results


def train_evaluate_plot(
    model: keras.Model,
    run: Run,
    train: Any,
    splits: Mapping[str, Any],
    options: TrainingOptions,
    verbose: int | str = "auto",
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    class_weight: Mapping[int, float] | None = None,
) -> FitOutcome:
    """Fit on ``train`` (validating on ``splits["validation"]``), evaluate the best model on
    every split of ``splits``, plot the curves. A run that did not complete is not evaluated.
    ``callbacks`` (the user's) run after the run's own; ``class_weight``: see ``fit_into_run``
    (the skeleton computes it from ``options.class_weight``)."""
    outcome = fit_into_run(model, run, train, splits["validation"], epochs=options.epochs,
                           early_stopping=options.early_stopping, verbose=verbose,
                           callbacks=callbacks, class_weight=class_weight)
    if outcome.epochs_run:
        if outcome.status == COMPLETED:
            evaluate_into_run(run, splits)
        plot_runs([run], run.file(CURVES))
    return outcome
