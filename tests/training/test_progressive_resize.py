"""Progressive resizing: a training-only resize, set per epoch, retraced once per size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.errors import PipelineError
from pipeline.layers.training_resize import TrainingResize
from pipeline.models.heads import HeadOptions
from pipeline.models.saving import load_model, save_model
from pipeline.training.options import TrainingOptions
from pipeline.training.progressive_resize import ProgressiveResize, training_resize_layer
from pipeline.training.progressive_resize_options import check_start_size, resize_schedule
from pipeline.workflows.extract.workflow import ExtractConfig, run_extract
from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

SIZE = 48


class SizeSeen(keras.layers.Layer):
    """Adds up, at run time, the side in pixels of every training batch that passes."""

    def build(self, input_shape) -> None:
        self.total = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x, training=None):
        if training:
            self.total.assign_add(keras.ops.cast(keras.ops.shape(x)[1], "float32"))
        return x


class SidesPerEpoch(keras.callbacks.Callback):
    """The side of the training batches of each epoch, from ``SizeSeen``'s running total."""

    def __init__(self, seen: SizeSeen, steps: int) -> None:
        super().__init__()
        self.seen, self.steps, self.sides, self.before = seen, steps, [], 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        total = float(keras.ops.convert_to_numpy(self.seen.total))
        self.sides.append((total - self.before) / self.steps)
        self.before = total


def _pooling_model(resize: TrainingResize, seen: SizeSeen) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(resize(inputs))
    x = keras.layers.GlobalAveragePooling2D()(seen(x))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_the_schedule_trains_the_first_half_at_the_start_size():
    assert resize_schedule(176, 240, 6) == [176, 176, 176, 240, 240, 240]
    assert resize_schedule(176, 240, 5) == [176, 176, 240, 240, 240]  # finishes at full size
    assert resize_schedule(176, 240, 1) == [240]
    assert resize_schedule(None, 240, 3) == [240, 240, 240]


@pytest.mark.parametrize("start", [31, 240, 300])
def test_a_start_size_outside_the_base_range_is_refused_in_one_line(start):
    with pytest.raises(PipelineError, match=rf"`start_size` {start}: give a size from 32"):
        check_start_size(start, 240, 32)
    check_start_size(None, 240, 32)
    check_start_size(200, 240, 32)


def test_the_layer_resizes_only_training_batches_and_saves_without_its_size(tmp_path):
    layer = TrainingResize()
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.array_equal(keras.ops.convert_to_numpy(layer(images, training=True)), images)
    layer.size = 16
    assert keras.ops.convert_to_numpy(layer(images, training=True)).shape == (2, 16, 16, 3)
    assert np.array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    flat = np.full((1, 32, 32, 3), 7.0, "float32")  # a flat image stays flat at any size
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(flat, training=True)), 7.0)
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(layer(inputs))
    save_model(keras.Model(inputs, keras.layers.Dense(2)(pooled)), tmp_path / "m.keras")
    loaded = training_resize_layer(load_model(tmp_path / "m.keras"))
    assert loaded is not None and loaded.size is None  # the schedule's state is not saved


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_trains_each_epoch_at_its_scheduled_size_and_validates_at_full(jit_compile):
    keras.utils.set_random_seed(0)
    resize, seen = TrainingResize(), SizeSeen()
    model = _pooling_model(resize, seen)
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=jit_compile)
    x = np.random.default_rng(1).normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 2
    weights = [w.copy() for w in model.get_weights()]
    sides = SidesPerEpoch(seen, steps=2)
    model.fit(x, y, batch_size=4, epochs=4, verbose=0, validation_data=(x, y),
              callbacks=[ProgressiveResize(resize, resize_schedule(16, 32, 4), 32), sides])
    assert sides.sides == [16, 16, 32, 32]  # validation (not counted) runs at 32 throughout
    assert resize.size is None  # the model as it serves, after training
    assert any(not np.allclose(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    assert model.predict(x, verbose=0).shape == (8, 2)


@pytest.fixture(scope="module")
def extract_runs(synthetic_dataset, tmp_path_factory):
    """Two tiny VGG16 extract runs: a pooling (gap) head at ``SIZE`` px, and the book's flatten
    at 64 px (a 2x2 feature map, 1x1 at 32 px)."""
    models = tmp_path_factory.mktemp("progressive") / "models"
    common = dict(data_dir=synthetic_dataset, models_dir=models, weights="none",
                  head_options=HeadOptions(dense=8),
                  training=TrainingOptions(epochs=1, batch_size=8))
    return {head: run_extract(ExtractConfig(head=head, run_name=head, image_size=size,
                                            **common), verbose=0)
            for head, size in (("gap", SIZE), ("flatten", 64))}


def test_finetune_with_a_start_size_trains_and_saves_a_full_size_model(extract_runs, capsys):
    source = extract_runs["gap"]
    run = run_finetune(FinetuneConfig(
        source_run=source.path, models_dir=source.path.parent, views=0, unfreeze="3",
        start_size=32, training=TrainingOptions(epochs=2, batch_size=8),
    ), verbose=1)
    assert "epochs 1-1 at 32 px, the rest at 48 px" in capsys.readouterr().out
    assert run.record().config["start_size"] == 32
    assert run.record().epochs_run == 2
    model = load_model(run.file("best.keras"))
    assert tuple(model.input.shape) == (None, SIZE, SIZE, 3)
    assert len(model.predict(np.zeros((2, SIZE, SIZE, 3), "float32"), verbose=0)) == 2


def test_finetune_refuses_a_start_size_its_head_or_path_cannot_use(extract_runs):
    flatten = extract_runs["flatten"]
    with pytest.raises(PipelineError, match="head needs the 64 px feature map"):
        run_finetune(FinetuneConfig(
            source_run=flatten.path, models_dir=flatten.path.parent, views=0, unfreeze="3",
            start_size=32, training=TrainingOptions(epochs=1, batch_size=8)), verbose=0)
    with pytest.raises(PipelineError, match="needs the base to train on images"):
        run_finetune(FinetuneConfig(source_run=flatten.path, start_size=32), verbose=0)


def test_cli_says_what_is_wrong_with_a_start_size_in_one_line(extract_runs):
    from cli import main

    source = extract_runs["gap"]
    result = CliRunner().invoke(main, ["finetune", str(source.path), "--views", "0",
                                       "--start-size", "64", "--models-dir",
                                       str(source.path.parent)])
    assert result.exit_code == 2, result.output
    assert "--start-size 64: give a size from 32" in result.output
    assert "Traceback" not in result.output
