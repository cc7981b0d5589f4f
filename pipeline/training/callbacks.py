"""The callbacks that keep a run safe: stop on a diverged loss, keep the last epoch, log scalars.

``fit_into_run`` adds them to every training run, in this order after the history writer
and the best checkpoint: ``StopOnNonFinite`` first (so nothing after it saves a diverged
model), ``LastCheckpoint`` (model and optimizer state of the last good epoch, to resume),
``ScalarLogs`` (TensorBoard event files). ``StopWhenSignalled`` comes first of all: a stop
that a library swallowed is raised again before anything else runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from pipeline.models.saving import save_model
from pipeline.system import interrupts

if TYPE_CHECKING:
    from pipeline.runs.folder import Run


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first loss that is not finite and says where, in ``problem``.

    Unlike Keras' ``TerminateOnNaN`` it leaves a record: the caller marks the run failed and
    saves nothing more (the diverged weights are NaN; the last good checkpoint stays).
    """

    def __init__(self) -> None:
        super().__init__()
        self.problem: str | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if self.problem is None and loss is not None and not math.isfinite(float(loss)):
            self._stop(f"the training loss became {float(loss)} in epoch {self.epoch + 1} "
                       f"(batch {batch + 1})")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            if self.problem is None and key.endswith("loss") and not math.isfinite(float(value)):
                self._stop(f"`{key}` became {float(value)} in epoch {epoch + 1}")

    def _stop(self, problem: str) -> None:
        self.problem = problem
        self.model.stop_training = True


class StopWhenSignalled(keras.callbacks.Callback):
    """Raises again, at the next batch or epoch end, a Ctrl-C or SIGTERM that library code
    swallowed (``pipeline.system.interrupts.raise_swallowed``): training stops as it was
    asked to."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        interrupts.raise_swallowed()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        interrupts.raise_swallowed()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        interrupts.raise_swallowed()


class LastCheckpoint(keras.callbacks.Callback):
    """Saves ``last.keras`` (weights and optimizer state) after every good epoch, atomically,
    and records that epoch (``last_epoch``) and the best one so far: what a resume needs."""

    def __init__(self, run: Run, guard: StopOnNonFinite, best: Any) -> None:
        super().__init__()
        self.run, self.guard, self.best = run, guard, best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.guard.problem is not None:
            return  # a diverged model is no checkpoint
        from pipeline.runs.folder import LAST_MODEL

        save_model(self.model, self.run.file(LAST_MODEL))
        self.run.update_record(last_epoch=epoch + 1, epochs_run=epoch + 1,
                               best_epoch=self.best.best_epoch)


# TensorBoard's scalar dashboard reads summaries tagged with this plugin (its version 0 has an
# empty payload): the same event files as ``tf.summary.scalar`` writes, without needing the
# ``tensorboard`` package, which Keras' own ``TensorBoard`` callback imports.
_SCALARS_PLUGIN = "scalars"


class ScalarLogs(keras.callbacks.Callback):
    """Per-epoch metrics as TensorBoard event files: ``<log_dir>/train`` and ``/validation``.

    The layout and tags (``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``) are
    those of ``keras.callbacks.TensorBoard``, so ``tensorboard --logdir`` shows the two
    curves side by side; only ``tensorflow`` is needed to write them.
    """

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _writer(self, name: str) -> Any:
        import tensorflow as tf

        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = _SCALARS_PLUGIN
        groups: dict[str, dict[str, float]] = {}
        for key, value in (logs or {}).items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            groups.setdefault(split, {})[f"epoch_{name}"] = float(value)
        for split, values in groups.items():
            writer = self._writer(split)
            with writer.as_default():
                for tag, value in values.items():
                    tf.summary.write(tag, tf.constant(value, tf.float32), step=epoch,
                                     metadata=metadata)
            writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch past which the next one would end beyond ``deadline``
    (``time.monotonic()`` seconds), judged by the longest epoch so far.

    Why after, not during, an epoch: a stop between epochs is an ordinary early stop (the run
    completes, its best epoch by validation is kept), never a half-trained epoch.
    """

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self.longest = 0.0
        self.stopped_after: int | None = None  # the last epoch trained, when it stopped
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        import time

        self._started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import time

        now = time.monotonic()
        self.longest = max(self.longest, now - self._started)
        if now + self.longest > self.deadline and not self.model.stop_training:
            self.model.stop_training = True
            self.stopped_after = epoch + 1
            print(f"time budget: stopping after epoch {epoch + 1} (another would end "
                  f"{now + self.longest - self.deadline:.0f} s past it)")
