"""Training vs validation curves: where does a run start to overfit?

Reads only what training wrote (``history.json`` of each run) and writes a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pipeline.errors import PipelineError
from pipeline.runs.folder import CURVES, Run
from pipeline.system import atomic


def smooth(values: Sequence[float], factor: float) -> np.ndarray:
    """Exponential moving average: ``s[i] = factor * s[i-1] + (1 - factor) * v[i]``.

    ``factor`` 0 returns the values unchanged; 0.8 is the book's choice for noisy curves.
    """
    if not 0.0 <= factor < 1.0:
        raise PipelineError(f"`smoothing` must be in [0, 1), got {factor}")
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for i, value in enumerate(values):
        out[i] = value if i == 0 else factor * out[i - 1] + (1.0 - factor) * value
    return out


def lowest_epoch(val_loss: Sequence[float]) -> int:
    """1-based epoch of the lowest validation loss (the first one on ties)."""
    return int(np.argmin(val_loss)) + 1


def overfitting_onset(
    train_loss: Sequence[float], val_loss: Sequence[float], patience: int = 3
) -> int | None:
    """1-based epoch after which validation loss rises while training loss keeps falling.

    The first epoch ``e`` such that validation loss goes up at each of the next
    ``patience`` epochs and training loss is lower at the end of that span than at
    ``e``; None when that never happens (no sign of overfitting yet).
    """
    train, val = np.asarray(train_loss, float), np.asarray(val_loss, float)
    for e in range(len(val) - patience):
        rising = all(val[e + i + 1] > val[e + i] for i in range(patience))
        if rising and train[e + patience] < train[e]:
            return e + 1
    return None


def default_output(runs: Sequence[Run]) -> Path:
    """``curves.png`` in the run for one run; ``compare-<a>-vs-<b>.png`` beside them for more."""
    if len(runs) == 1:
        return runs[0].file(CURVES)
    return runs[0].path.parent / ("compare-" + "-vs-".join(run.name for run in runs) + ".png")


def plot_runs(runs: Sequence[Run], out: Path, smoothing: float = 0.0, patience: int = 3) -> Path:
    """Accuracy and loss per epoch, training (dashed) vs validation (solid), one colour per run.

    A star marks each run's lowest validation loss; a dotted vertical line the
    overfitting onset (see ``overfitting_onset``, computed on the smoothed curves).
    """
    if not runs:
        raise PipelineError("give at least one run folder to plot")
    histories = [(run.name, run.read_history()) for run in runs]
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    acc_axes, loss_axes = figure.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(histories))]
    for (name, history), color in zip(histories, colors, strict=True):
        for axes, metric in ((acc_axes, "accuracy"), (loss_axes, "loss")):
            for prefix, style, label in (("", "--", "training"), ("val_", "-", "validation")):
                values = history.get(prefix + metric)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    axes.plot(
                        epochs, smooth(values, smoothing), style, color=color,
                        label=f"{name} {label}", marker="o" if len(values) < 40 else None,
                        markersize=3,
                    )
        _mark_loss_events(loss_axes, acc_axes, history, color, smoothing, patience)
    for axes, title in ((acc_axes, "Accuracy"), (loss_axes, "Loss")):
        axes.set_title(title + (f" (smoothed {smoothing})" if smoothing else ""))
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    out = Path(out)
    with atomic.atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return out


def _mark_loss_events(loss_axes, acc_axes, history, color, smoothing: float, patience: int) -> None:
    val_loss, train_loss = history.get("val_loss"), history.get("loss")
    if not val_loss:
        return
    val_smooth = smooth(val_loss, smoothing)
    best = lowest_epoch(val_smooth)
    loss_axes.plot(best, val_smooth[best - 1], "*", color=color, markersize=14,
                   label=f"lowest val loss (epoch {best})")
    if train_loss:
        onset = overfitting_onset(smooth(train_loss, smoothing), val_smooth, patience)
        if onset is not None:
            for axes in (loss_axes, acc_axes):
                axes.axvline(onset, color=color, linestyle=":", linewidth=1.5)
            loss_axes.plot([], [], ":", color=color, label=f"overfitting from epoch {onset}")
