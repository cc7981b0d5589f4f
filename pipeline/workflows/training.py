"""Fit a compiled model into a run directory: history, checkpoints, metrics, Ctrl-C.

Shared by every workflow, so that each saves the same artefacts the same way.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from pipeline import atomic
from pipeline.runs import BEST_MODEL, FINAL_MODEL, Run


def save_model(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` model atomically: a crash leaves the previous file intact."""
    with atomic.atomic_path(path) as tmp:
        model.save(tmp)


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
    """Saves the model whenever the monitored value improves (atomically, unlike Keras')."""

    def __init__(self, path: Path, monitor: str = "val_loss") -> None:
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value) or value >= self.best:
            return
        self.best, self.best_epoch = float(value), epoch + 1
        save_model(self.model, self.path)


@dataclass(frozen=True)
class FitOutcome:
    """What happened: epochs completed, whether the user stopped it, the best epoch."""

    epochs_run: int
    interrupted: bool
    best_epoch: int | None
    best_val_loss: float | None


def fit_into_run(
    model: keras.Model,
    run: Run,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
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
        model.fit(
            train,
            validation_data=validation,
            epochs=epochs,
            callbacks=all_callbacks,
            verbose=verbose,
            shuffle=False,  # the training dataset reshuffles itself every epoch
        )
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: keeping the epochs already saved.", file=sys.stderr)
    save_model(model, run.file(FINAL_MODEL))
    epochs_run = len(next(iter(writer.history.values()), []))
    run.update_config(
        status="interrupted" if interrupted else "completed",
        epochs_run=epochs_run,
        best_epoch=checkpoint.best_epoch,
    )
    best = checkpoint.best if checkpoint.best_epoch is not None else None
    return FitOutcome(epochs_run, interrupted, checkpoint.best_epoch, best)


def evaluate_into_run(
    run: Run, splits: dict[str, tf.data.Dataset], which: str = "best"
) -> dict[str, dict[str, float]]:
    """Evaluate the saved ``best`` (or ``final``) model on each split; store in metrics.json."""
    model = keras.models.load_model(run.model_path(which))
    results = {}
    for split, dataset in splits.items():
        metrics = model.evaluate(dataset, verbose=0, return_dict=True)
        run.write_metrics(split, metrics)
        results[split] = {k: float(v) for k, v in metrics.items()}
    run.update_config(evaluated_model=run.model_path(which).name)
    return results
