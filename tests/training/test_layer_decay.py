"""``layer_decay``: each stage of a base trains at its factor of the rate, the factors are
saved with the optimizer, 1 changes nothing, and a bad value is one clear line."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import cli
from pipeline.errors import PipelineError
from pipeline.models.layer_decay import layer_rate_factors, with_layer_decay
from pipeline.models.saving import load_model, save_model
from pipeline.models.schedules import ScheduleOptions, compile_scheduled
from pipeline.training.options import TrainingOptions


def _staged_model() -> keras.Model:
    """Three numbered blocks under a stem and a head, named as Keras' bases name them."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="block1a_conv")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="block2_conv1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="block_3_expand")(x)
    x = keras.layers.Conv2D(4, 1, name="top_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))


def test_each_stage_gets_the_decay_to_the_power_of_its_depth():
    model = _staged_model()
    factors = layer_rate_factors(model, 0.5)
    by_layer = {path.split("/")[0]: factor for path, factor in factors.items()}
    assert by_layer == {"stem_conv": 0.5 ** 4, "block1a_conv": 0.5 ** 3,
                        "block2_conv1": 0.5 ** 2, "block_3_expand": 0.5}
    assert len(factors) == 8  # kernel and bias of each: top_conv and head stay at full rate
    assert layer_rate_factors(model, 1.0) == {}
    optimizer = keras.optimizers.Adam(1e-3)
    assert with_layer_decay(optimizer, model, 1.0) is optimizer


def test_a_step_moves_each_stage_by_its_factor_and_the_top_by_the_full_rate():
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 3
    moves = {}
    for decay in (1.0, 0.5):
        keras.utils.set_random_seed(0)
        model = _staged_model()
        before = {w.path: keras.ops.convert_to_numpy(w) for w in model.trainable_weights}
        compile_scheduled(model, 3, "sgd", 0.1, ScheduleOptions(), steps_per_epoch=1,
                          epochs=1, layer_decay=decay)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        moves[decay] = {w.path: keras.ops.convert_to_numpy(w) - before[w.path]
                        for w in model.trainable_weights}
    # Plain SGD, one step from the same weights on the same batch: update = rate x gradient.
    for path, expected in (("stem_conv/kernel", 0.5 ** 4), ("block_3_expand/kernel", 0.5),
                           ("top_conv/kernel", 1.0), ("head/kernel", 1.0)):
        np.testing.assert_allclose(moves[0.5][path], expected * moves[1.0][path],
                                   rtol=1e-4, atol=1e-7)


def test_the_factors_are_saved_with_the_optimizer_and_training_continues(tmp_path):
    model = _staged_model()
    compile_scheduled(model, 3, "adam", 1e-3, ScheduleOptions("cosine", 0.0),
                      steps_per_epoch=2, epochs=2, layer_decay=0.8)
    x = np.zeros((4, 8, 8, 3), "float32")
    model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    assert type(model.optimizer).__name__ == "LayerDecayAdam"
    save_model(model, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=True)  # as a run is continued
    assert type(loaded.optimizer).__name__ == "LayerDecayAdam"
    assert loaded.optimizer.rate_factors == model.optimizer.rate_factors
    history = loaded.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5, float("nan"), True])
def test_a_bad_value_is_one_line_naming_the_option(value):
    with pytest.raises(PipelineError) as caught:
        TrainingOptions(layer_decay=value).validate()
    assert "\n" not in str(caught.value) and "`layer_decay`" in str(caught.value)


def test_the_command_line_refuses_a_bad_value_in_one_line(synthetic_dataset, tmp_path):
    result = CliRunner().invoke(cli.main, [
        "train", "--data", str(synthetic_dataset), "--models-dir", str(tmp_path / "models"),
        "--layer-decay", "1.5"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "layer" in line and "decay" in line]
    assert len(errors) == 1 and "at most 1" in errors[0], result.output
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
