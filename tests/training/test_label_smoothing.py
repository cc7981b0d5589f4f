"""``label_smoothing``: the loss trains toward smoothed targets for two classes and for many,
saves and loads with a model, works in mixed precision and under XLA, is recorded by the run,
and a bad value is one clear line."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import cli
from pipeline.errors import PipelineError
from pipeline.models.losses import loss_for
from pipeline.models.saving import load_model, save_model
from pipeline.models.smoothed_crossentropy import SmoothedSparseCategoricalCrossentropy
from pipeline.training.options import TrainingOptions
from pipeline.training.precision import precision_policy

LABELS = np.array([0, 2, 1, 2])
PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25],
                          [0.8, 0.1, 0.1]], dtype="float32")


def reference(labels: np.ndarray, probabilities: np.ndarray, smoothing: float) -> float:
    """Cross-entropy against one-hot targets moved toward uniform, in NumPy."""
    classes = probabilities.shape[1]
    target = np.eye(classes)[labels] * (1 - smoothing) + smoothing / classes
    return float(np.mean(-np.sum(target * np.log(probabilities), axis=1)))


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_the_loss_is_cross_entropy_against_smoothed_targets(smoothing):
    loss = SmoothedSparseCategoricalCrossentropy(smoothing)
    for labels in (LABELS, LABELS[:, None]):  # (batch,) and (batch, 1) labels alike
        value = float(loss(labels, PROBABILITIES))
        assert value == pytest.approx(reference(LABELS, PROBABILITIES, smoothing), rel=1e-5)


def test_without_smoothing_the_losses_are_keras_own_by_name():
    assert loss_for(2) == "binary_crossentropy"
    assert loss_for(17) == "sparse_categorical_crossentropy"
    keras_own = keras.losses.SparseCategoricalCrossentropy()(LABELS, PROBABILITIES)
    assert float(SmoothedSparseCategoricalCrossentropy(0.0)(LABELS, PROBABILITIES)) == \
        pytest.approx(float(keras_own), rel=1e-5)


def test_two_classes_smooth_keras_binary_cross_entropy():
    loss = loss_for(2, 0.2)
    assert isinstance(loss, keras.losses.BinaryCrossentropy)
    probability = np.array([[0.9]], dtype="float32")
    # The target 1 becomes 1 - 0.2 + 0.2 / 2 = 0.9: the loss is the entropy of 0.9.
    expected = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    assert float(loss(np.array([[1.0]]), probability)) == pytest.approx(expected, rel=1e-3)


def test_the_loss_round_trips_its_config_and_a_compiled_model_loads(tmp_path):
    loss = loss_for(5, 0.15)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, SmoothedSparseCategoricalCrossentropy)
    assert again.get_config() == loss.get_config()
    assert again.label_smoothing == pytest.approx(0.15)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="softmax")])
    model.compile(optimizer="sgd", loss=loss)
    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras", compile=True)
    assert loaded.loss.label_smoothing == pytest.approx(0.15)


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_a_model_trains_with_it_in_mixed_precision_and_under_xla(precision):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0).astype("int32")  # three classes
    with precision_policy(precision):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3, activation="softmax", dtype="float32")])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss_for(3, 0.1),
                      jit_compile=True)
        history = model.fit(x, y, batch_size=16, epochs=15, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]
    # Smoothing keeps the confident outputs short of 1: no probability runs off to 1.0.
    assert model.predict(x, verbose=0).max() < 0.999


def test_a_run_records_it_and_trains_toward_it(synthetic_dataset, tmp_path):
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    losses = {}
    for smoothing in (0.0, 0.2):
        run = train_scratch(ScratchConfig(
            data_dir=synthetic_dataset, models_dir=tmp_path, run_name=f"ls{smoothing}",
            image_size=48, training=TrainingOptions(batch_size=8, epochs=1, learning_rate=1e-3,
                                                    label_smoothing=smoothing)), verbose=0)
        assert run.record().config["training"]["label_smoothing"] == smoothing
        losses[smoothing] = run.read_history()["loss"][0]
    assert losses[0.2] != pytest.approx(losses[0.0], rel=1e-3)


@pytest.mark.parametrize("value", [-0.1, 1.0, 2.5])
def test_a_bad_value_is_one_line_naming_the_option(value):
    with pytest.raises(PipelineError) as caught:
        TrainingOptions(label_smoothing=value).validate()
    assert "\n" not in str(caught.value) and "`label_smoothing`" in str(caught.value)
    with pytest.raises(PipelineError, match="label_smoothing"):
        SmoothedSparseCategoricalCrossentropy(value)


def test_the_command_line_refuses_a_bad_value_in_one_line(synthetic_dataset, tmp_path):
    result = CliRunner().invoke(cli.main, [
        "train", "--data", str(synthetic_dataset), "--models-dir", str(tmp_path / "models"),
        "--label-smoothing", "1.5"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "--label-smoothing" in line]
    assert len(errors) == 1 and "[0, 1)" in errors[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
