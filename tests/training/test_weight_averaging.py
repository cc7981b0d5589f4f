"""Weight averaging (``--ema``): what is validated is what is kept and saved.

A small dense model on arrays, trained for real at a rate high enough that the raw weights
and their average differ clearly from epoch to epoch.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from pipeline.errors import PipelineError
from pipeline.models.classifier import compile_classifier
from pipeline.models.weight_averaging import averaged_weights
from pipeline.runs.folder import BEST_MODEL, FINAL_MODEL, Run, RunRecord
from pipeline.system import interrupts
from pipeline.training.loop import fit_into_run
from pipeline.training.options import TrainingOptions


def _arrays(seed: int, count: int = 96):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(count, 8)).astype("float32")
    labels = (features[:, 0] + 0.5 * rng.normal(size=count) > 0).astype("float32")
    return features, labels


def _model(ema_momentum: float | None) -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    return compile_classifier(model, 2, "sgd", 0.3, ema_momentum=ema_momentum)


class _StopAtEpoch(keras.callbacks.Callback):
    """Ctrl-C as ``epoch`` begins, as a user would press it."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _fit(tmp_path, ema_momentum, epochs=4, name=None, callbacks=()):
    model = _model(ema_momentum)
    run = Run.create(tmp_path, "extract", name)
    if not run.resuming:
        run.write_record(RunRecord("extract", "data", ["cat", "dog"], 8))
    interrupts.take_deferred()
    train = tf.data.Dataset.from_tensor_slices(_arrays(0)).batch(16)
    validation = _arrays(1)
    outcome = fit_into_run(model, run, train,
                           tf.data.Dataset.from_tensor_slices(validation).batch(32),
                           epochs=epochs, verbose=0, callbacks=callbacks)
    interrupts.take_deferred()
    return model, run, outcome, validation


def _validation_loss(path, validation) -> float:
    model = keras.saving.load_model(path)
    return float(model.evaluate(*validation, verbose=0, return_dict=True)["loss"])


@pytest.mark.parametrize("momentum", [None, 0.9])
def test_the_best_and_final_models_are_the_weights_that_were_validated(tmp_path, momentum):
    # Were the raw weights validated and the average saved (or the reverse), the losses
    # recomputed from the saved files would not match the history.
    _, run, outcome, validation = _fit(tmp_path, momentum)
    history = run.read_history()["val_loss"]
    assert _validation_loss(run.file(BEST_MODEL), validation) == pytest.approx(
        history[outcome.best_epoch - 1], rel=1e-4)
    assert _validation_loss(run.file(FINAL_MODEL), validation) == pytest.approx(
        history[-1], rel=1e-4)


def test_averaging_changes_what_training_leaves(tmp_path):
    _, plain_run, _, _ = _fit(tmp_path / "plain", None)
    _, averaged_run, _, _ = _fit(tmp_path / "averaged", 0.9)
    plain = plain_run.read_history()["val_loss"]
    averaged = averaged_run.read_history()["val_loss"]
    assert plain != pytest.approx(averaged, rel=1e-3)  # same seed, same data: the average differs
    saved = keras.saving.load_model(averaged_run.file(FINAL_MODEL))
    assert saved.optimizer.use_ema and saved.optimizer.ema_momentum == pytest.approx(0.9)


def test_an_interrupted_run_continues_with_its_average(tmp_path):
    # last.keras keeps the raw weights and the optimizer with the average: the continued run
    # validates exactly what an uninterrupted one does.
    _, whole, _, _ = _fit(tmp_path / "whole", 0.9)
    _, stopped, outcome, _ = _fit(tmp_path / "parts", 0.9, name="run",
                                  callbacks=[_StopAtEpoch(2)])
    assert outcome.interrupted and stopped.record().last_epoch == 2
    _, continued, outcome, _ = _fit(tmp_path / "parts", 0.9, name="run")
    assert continued.resuming and outcome.status == "completed"
    assert continued.read_history()["val_loss"] == pytest.approx(
        whole.read_history()["val_loss"], rel=1e-5)


class _StopWhileValidating(keras.callbacks.Callback):
    """Ctrl-C inside the validation pass of ``epoch`` (after the average was swapped in):
    keeps the weights the model held then, which are the average it was validating."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch, self.current, self.validated = epoch, -1, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_test_batch_begin(self, batch, logs=None):
        if self.current == self.epoch:
            self.validated = [np.array(w) for w in self.model.get_weights()]
            raise KeyboardInterrupt


def test_a_stop_inside_validation_saves_the_average_and_keeps_the_raw_weights(tmp_path):
    # Keras swaps the average in for validation and out after it; a stop in between must not
    # leave the swap half done (final.keras would hold the raw weights, the optimizer the
    # average where the raw weights belong).
    stop = _StopWhileValidating(2)
    model, run, outcome, _ = _fit(tmp_path, 0.9, callbacks=[stop])
    assert outcome.interrupted and stop.validated is not None
    saved = keras.saving.load_model(run.file(FINAL_MODEL)).get_weights()
    for got, want in zip(saved, stop.validated, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    average = [keras.ops.convert_to_numpy(v)
               for v in model.optimizer._model_variables_moving_average]
    for got, want in zip(average, stop.validated, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)  # the average is in its place again
    assert not all(np.allclose(a, b) for a, b in zip(model.get_weights(), stop.validated,
                                                       strict=True))


def test_averaged_weights_swaps_in_the_average_and_puts_the_raw_weights_back(tmp_path):
    model = _model(0.5)
    x, y = _arrays(0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    # fit ends by writing the average into the model: take two more raw steps after it.
    model.train_on_batch(x[:16], y[:16])
    model.train_on_batch(x[16:32], y[16:32])
    raw = [np.array(w) for w in model.get_weights()]
    average = [np.array(keras.ops.convert_to_numpy(v))
               for v in model.optimizer._model_variables_moving_average]
    assert not all(np.allclose(a, b) for a, b in zip(raw, average, strict=True))
    with averaged_weights(model):
        inside = model.get_weights()
    for got, want in zip(inside, average, strict=True):
        np.testing.assert_allclose(got, want)
    for got, want in zip(model.get_weights(), raw, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_cached_top_stopped_early_saves_the_whole_model_averaged(tmp_path):
    # The whole model shares its layers with the top that trained; a run stopped before
    # Keras' fit put the average in still saves the average, as its validation saw it.
    from pipeline.workflows.finetune.cached_top import _save_full_models

    top = _model(0.5)
    x, y = _arrays(0)
    top.fit(x, y, epochs=1, batch_size=16, verbose=0)
    top.train_on_batch(x[:16], y[:16])  # raw steps after fit: raw and average differ
    average = [np.array(keras.ops.convert_to_numpy(v))
               for v in top.optimizer._model_variables_moving_average]
    whole = keras.Model(top.inputs, top.outputs)
    compile_classifier(whole, 2, "sgd", 0.3)
    run = Run.create(tmp_path, "finetune")
    _save_full_models(run, whole, top)
    saved = keras.saving.load_model(run.file(FINAL_MODEL)).get_weights()
    for got, want in zip(saved, average, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_model_without_averaging_is_left_alone():
    model = _model(None)
    before = [np.array(w) for w in model.get_weights()]
    with averaged_weights(model):
        pass
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("momentum", [0.0, 1.0, -0.5, 2.0])
def test_a_momentum_outside_zero_to_one_is_refused(momentum):
    with pytest.raises(PipelineError, match="`ema_momentum`"):
        TrainingOptions(ema_momentum=momentum).validate()


def test_the_cli_names_a_bad_ema_before_any_work(tmp_path):
    result = CliRunner().invoke(cli.main, ["extract", "--data", str(tmp_path / "none"),
                                           "--models-dir", str(tmp_path / "models"),
                                           "--ema", "1.5"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --ema 1.5")
    assert not (tmp_path / "models").exists()
