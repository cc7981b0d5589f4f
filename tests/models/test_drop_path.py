"""Drop path in a transfer model's copy: the base's residual Adds become StochasticDepthAdd at
rates rising with depth, each knowing which input is its branch; the graph, weights, flags
and predictions kept; a rate out of range, or one that would drop nothing, is one line."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import cli
from pipeline.errors import PipelineError
from pipeline.layers.stochastic_depth_add import StochasticDepthAdd
from pipeline.models.drop_path import check_drop_path_trains, plan_drop_path
from pipeline.models.preprocessing import ImagePreprocessing
from pipeline.models.saving import load_model, save_model
from pipeline.models.transfer import base_layers, producer_name, replace_augmentation
from pipeline.runs.continuation import continued
from pipeline.runs.record import INTERRUPTED, RunRecord
from pipeline.training.config import config_to_dict
from pipeline.workflows.finetune.config import FinetuneConfig

ADDS = ["block1_add", "block2_add", "block3_add", "block4_add"]


def _branch(x, name: str):
    x = keras.layers.Conv2D(4, 3, padding="same", name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def _tiny_model(residual: bool = True) -> keras.Model:
    """A transfer model's layout (image, preprocess, base, head_*/predictions) around a base
    with the residual blocks the real ones have: [branch, shortcut] (EfficientNet-Lite),
    [shortcut, branch] (ResNet, MobileNetV2), a per-sample Dropout on the branch
    (keras.applications EfficientNet) and a projection shortcut (ResNet's first block of a
    stage); then an Add that is not residual (a broadcast). ``residual`` False: none of them."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="image")
    x = ImagePreprocessing("lite", name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(x)
    if residual:
        x = keras.layers.Add(name="block1_add")([_branch(x, "block1"), x])
        x = keras.layers.Add(name="block2_add")([x, _branch(x, "block2")])
        dropped = keras.layers.Dropout(0.2, noise_shape=(None, 1, 1, 1),
                                       name="block3_drop")(_branch(x, "block3"))
        x = keras.layers.Add(name="block3_add")([dropped, x])
        shortcut = keras.layers.Conv2D(4, 1, name="block4_shortcut")(x)
        x = keras.layers.Add(name="block4_add")(
            [shortcut, _branch(_branch(x, "block4a"), "block4b")])
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="top_pool")(x)
    x = keras.layers.Add(name="top_add")([x, pooled])  # shapes differ: no residual block
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def _images(count: int = 4) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (count, 8, 8, 3)).astype("float32")


def _drop_rates(model: keras.Model) -> dict[str, float]:
    return {layer.name: layer.rate for layer in model.layers
            if isinstance(layer, StochasticDepthAdd)}


def test_the_residual_adds_drop_at_rates_rising_linearly_with_depth():
    model = _tiny_model()
    model.get_layer("block1_conv").trainable = False
    copy = replace_augmentation(model, None, drop_path=0.4)
    assert _drop_rates(copy) == pytest.approx(dict(zip(ADDS, [0.1, 0.2, 0.3, 0.4],
                                                       strict=True)))
    assert type(copy.get_layer("top_add")) is keras.layers.Add
    assert copy.get_layer("block3_drop").rate == 0.0  # the base's own drop connect: not twice
    assert [(layer.name, layer.trainable) for layer in copy.layers] == [
        (layer.name, layer.trainable) for layer in model.layers]
    for original, copied in zip(model.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(copied.numpy(), original.numpy(), err_msg=original.path)


def test_each_add_drops_its_branch_whichever_order_the_base_wrote():
    model = _tiny_model()
    copy = replace_augmentation(model, None, drop_path=0.4)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    for name, branch_end in (("block1_add", "block1_bn"), ("block2_add", "block2_bn"),
                             ("block3_add", "block3_drop"), ("block4_add", "block4b_bn")):
        add = copy.get_layer(name)
        residual = add.input[add.residual_index]
        assert producer_name(copy, residual) == branch_end, name
    assert [copy.get_layer(name).residual_index for name in ADDS] == [0, 1, 0, 1]


def test_the_copy_predicts_as_the_model_and_saves_as_it(tmp_path):
    model = _tiny_model()
    copy = replace_augmentation(model, None, drop_path=0.4)
    expected = model.predict(_images(), verbose=0)
    np.testing.assert_allclose(copy.predict(_images(), verbose=0), expected, rtol=1e-6,
                               atol=1e-7)
    save_model(copy, tmp_path / "copy.keras")
    loaded = load_model(tmp_path / "copy.keras")
    assert _drop_rates(loaded) == _drop_rates(copy)
    np.testing.assert_allclose(loaded.predict(_images(), verbose=0), expected, rtol=1e-6,
                               atol=1e-7)


def test_rate_zero_copies_the_model_as_before():
    copy = replace_augmentation(_tiny_model(), None)
    assert _drop_rates(copy) == {}
    assert type(copy.get_layer("block1_add")) is keras.layers.Add
    assert copy.get_layer("block3_drop").rate == 0.2


def test_mixed_bfloat16_training_drops_paths_and_stays_finite():
    copy = replace_augmentation(_tiny_model(), None, "mixed_bfloat16", drop_path=0.4)
    assert copy.get_layer("block4_add").compute_dtype == "bfloat16"
    first, second = (keras.ops.convert_to_numpy(copy(_images(16), training=True))
                     for _ in range(2))
    assert not np.allclose(first, second), "two training calls drew the same blocks"
    copy.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    history = copy.fit(_images(16), np.arange(16) % 2, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_a_rate_that_would_drop_nothing_is_refused_in_one_line():
    copy = replace_augmentation(_tiny_model(), None, drop_path=0.4)
    check_drop_path_trains(copy, 0.4, "tiny", "all")
    for layer in base_layers(copy):
        layer.trainable = False  # a frozen block adds plainly
    with pytest.raises(PipelineError, match=r"^`drop_path` 0.4: none of the tiny base's 4 "
                                            r"residual blocks trains with `unfreeze` top;"):
        check_drop_path_trains(copy, 0.4, "tiny", "top")
    check_drop_path_trains(copy, 0.0, "tiny", "top")  # off: nothing to check
    plain = replace_augmentation(_tiny_model(residual=False), None, drop_path=0.4)
    with pytest.raises(PipelineError, match="the vgg16 base has no residual blocks") as caught:
        check_drop_path_trains(plain, 0.4, "vgg16", "all")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("rate", [-0.1, 1.0, float("nan"), True])
def test_a_rate_outside_0_to_1_is_one_line_naming_the_option(rate):
    with pytest.raises(PipelineError) as caught:
        plan_drop_path(base_layers(_tiny_model()), rate)
    assert "\n" not in str(caught.value) and f"`drop_path` {rate!r}" in str(caught.value)


def test_the_command_line_refuses_a_bad_rate_in_one_line_before_any_work(tmp_path):
    result = CliRunner().invoke(cli.main, [
        "finetune", str(tmp_path / "extract-run"), "--models-dir", str(tmp_path / "models"),
        "--drop-path", "1.0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "drop-path" in line]
    assert errors == ["error: --drop-path 1.0: give the last residual block's drop probability, "
                      "at least 0 and below 1, e.g. 0.1 (0: off)"], result.output
    assert not (tmp_path / "models").exists()


def test_a_finetune_run_recorded_before_the_option_continues_without_drop_path(tmp_path):
    def record(**options) -> RunRecord:
        config = config_to_dict(FinetuneConfig(run_name="old", **options))
        return RunRecord("finetune", str(tmp_path), ["cat", "dog"], 48, config=config)

    old = dataclasses.replace(record(), status=INTERRUPTED, last_epoch=1)
    del old.config["drop_path"]  # written before the option existed
    assert continued(old, record()).last_epoch == 1
    with pytest.raises(PipelineError, match=r"`drop_path` was 0\.0, now 0\.2"):
        continued(old, record(drop_path=0.2))
