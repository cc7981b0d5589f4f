"""Overfitting curves: smoothing, the marked epochs, and the PNG."""

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.plots.curves import lowest_epoch, overfitting_onset, plot_runs, smooth
from pipeline.runs.folder import Run


def test_smooth_is_an_exponential_moving_average():
    assert smooth([1.0, 2.0, 3.0], 0.0).tolist() == [1.0, 2.0, 3.0]
    np.testing.assert_allclose(smooth([1.0, 3.0, 3.0], 0.5), [1.0, 2.0, 2.5])
    with pytest.raises(PipelineError, match="`smoothing`"):
        smooth([1.0], 1.0)


def test_onset_is_where_validation_loss_rises_while_training_loss_falls():
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
    val = [1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 1.0]
    assert lowest_epoch(val) == 3
    assert overfitting_onset(train, val, patience=3) == 3
    # Both falling: no overfitting; a single bump is not enough either.
    assert overfitting_onset(train, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]) is None
    assert overfitting_onset(train, [1.0, 0.9, 0.95, 0.7, 0.6, 0.5, 0.4], patience=2) is None
    # Validation loss rising because training diverges too is not overfitting.
    assert overfitting_onset([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], patience=3) is None


def _run_with_history(tmp_path, name, history):
    run = Run.create(tmp_path, "scratch", name)
    run.write_history(history)
    return run


def test_plot_writes_a_png_for_one_or_several_runs(tmp_path):
    epochs = 12
    falling = list(np.linspace(1.0, 0.1, epochs))
    u_shape = [abs(e - 5) * 0.1 + 0.4 for e in range(epochs)]
    history = {"loss": falling, "val_loss": u_shape,
               "accuracy": [1 - x / 2 for x in falling], "val_accuracy": [0.7] * epochs}
    a = _run_with_history(tmp_path, "a", history)
    b = _run_with_history(tmp_path, "b", {"loss": falling, "val_loss": falling})
    out = plot_runs([a, b], tmp_path / "compare.png", smoothing=0.5)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 600
        assert np.asarray(image.convert("L")).std() > 5  # not a blank canvas


def test_plot_without_history_is_a_clear_error(tmp_path):
    run = Run.create(tmp_path, "scratch")
    with pytest.raises(PipelineError, match=r"history\.json"):
        plot_runs([run], tmp_path / "x.png")
