"""The training skeleton every workflow shares: augmentation, fit, evaluate, plot.

Each step is one function, so every workflow saves the same artefacts the same way:
history after every epoch, the best model (atomically), the final model, metrics of the
best model per split, the curves; Ctrl-C keeps what was saved.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.pca_color import rgb_principal_components
from pipeline.models.saving import load_model, save_model
from pipeline.plots.curves import plot_runs
from pipeline.runs import BEST_MODEL, CURVES, FINAL_MODEL, Run
from pipeline.workflows.options import TrainingOptions


def augmentation_layer(
    options: AugmentConfig, train_images: Iterable[tuple[Any, Any]], seed: int
) -> keras.Layer:
    """The augmentation layers of ``options``; PCA colour shift fitted on ``train_images``."""
    pca = None
    if options.pca_color:
        pca = rgb_principal_components((np.asarray(images) for images, _ in train_images),
                                       seed=seed)
    return build_augmentation(options, pca, seed=seed)


class HistoryWriter(keras.callbacks.Callback):
    """Writes the run's history (JSON and CSV) after every epoch, so nothing is lost on a stop."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.history: dict[str, list[float]] = {}

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
    """What happened: epochs completed, whether the user stopped it, the best epoch."""

    epochs_run: int
    interrupted: bool
    best_epoch: int | None
    best_value: float | None


def fit_into_run(
    model: keras.Model,
    run: Run,
    train: Any,
    validation: Any,
    *,
    epochs: int,
    early_stopping: int | None = None,
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> FitOutcome:
    """Train ``model`` and leave history, ``best.keras`` and ``final.keras`` in ``run``.

    Ctrl-C ends training cleanly: the epochs already done stay saved, the model as
    it stands is saved as ``final.keras`` and the run is marked ``interrupted``.
    """
    writer = HistoryWriter(run)
    checkpoint = BestCheckpoint(run.file(BEST_MODEL))
    all_callbacks = [writer, checkpoint, *(callbacks or [])]
    if early_stopping:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping, verbose=1)
        )
    interrupted = False
    try:
        model.fit(train, validation_data=validation, epochs=epochs, callbacks=all_callbacks,
                  verbose=verbose, shuffle=False)  # the training data reshuffles itself
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: keeping the epochs already saved.", file=sys.stderr)
    save_model(model, run.file(FINAL_MODEL))
    epochs_run = len(next(iter(writer.history.values()), []))
    run.finish("interrupted" if interrupted else "completed", epochs_run=epochs_run,
               best_epoch=checkpoint.best_epoch)
    return FitOutcome(epochs_run, interrupted, checkpoint.best_epoch, checkpoint.best)


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
) -> FitOutcome:
    """Fit on ``train`` (validating on ``splits["validation"]``), evaluate the best model on
    every split of ``splits``, plot the curves. A stopped run is not evaluated."""
    outcome = fit_into_run(model, run, train, splits["validation"], epochs=options.epochs,
                           early_stopping=options.early_stopping, verbose=verbose)
    if outcome.epochs_run:
        if not outcome.interrupted:
            evaluate_into_run(run, splits)
        plot_runs([run], run.file(CURVES))
    return outcome
