"""``class_weight``: balanced weights are n / (C * n_c) of the training split, they weigh the
training loss for every input kind the workflows train on, the run records the choice, and a
bad value is one clear line."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from pipeline.cache.features import ArrayBatches
from pipeline.cache.views import CachedViews, ViewBatches, ViewsKey
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.data.synth import draw_sample
from pipeline.errors import PipelineError
from pipeline.runs.folder import Run, RunRecord
from pipeline.training.class_weights import (
    balanced_class_weights,
    class_weights_for,
    training_class_counts,
)
from pipeline.training.loop import fit_into_run
from pipeline.training.options import CLASS_WEIGHTS, DEFAULT_CLASS_WEIGHT, TrainingOptions
from pipeline.workflows.scratch import ScratchConfig, train_scratch

PHOTOS = {"circles": 24, "rectangles": 6}  # uneven on purpose: 4 to 1


@pytest.fixture(scope="module")
def skewed_dataset(tmp_path_factory):
    """Two classes of generated 48 px photos, 24 and 6, prepared 0.5/0.25/0.25 (12 and 3 train)."""
    source = tmp_path_factory.mktemp("photos") / "shapes"
    rng = np.random.default_rng(0)
    for shape, count in PHOTOS.items():
        (source / shape).mkdir(parents=True)
        for index in range(count):
            draw_sample(shape, 48, rng).save(source / shape / f"{shape}-{index:02d}.jpg")
    result = prepare_dataset(PrepareConfig(source=source, data_root=source.parent / "data",
                                           split="0.5,0.25,0.25"), progress=False)
    return result.dataset_dir


# -- the weights ---------------------------------------------------------------------------------


def test_balanced_weights_are_n_over_classes_times_count():
    weights = balanced_class_weights([10, 30, 60])
    assert weights == pytest.approx({0: 100 / 30, 1: 100 / 90, 2: 100 / 180})
    # Every class then adds the same total weight, and the weights average 1 per image.
    totals = [weights[c] * n for c, n in enumerate([10, 30, 60])]
    assert totals == pytest.approx([100 / 3] * 3)


def test_even_classes_weigh_one_and_an_empty_class_is_left_out():
    assert balanced_class_weights([7, 7]) == {0: 1.0, 1: 1.0}
    assert balanced_class_weights([0, 4, 12]) == pytest.approx({1: 2.0, 2: 2 / 3})
    with pytest.raises(PipelineError, match="no images"):
        balanced_class_weights([0, 0])


def test_counts_are_the_training_splits_of_the_manifest(skewed_dataset):
    assert training_class_counts(skewed_dataset, ["circles", "rectangles"]) == [12, 3]
    assert class_weights_for("balanced", skewed_dataset, ["circles", "rectangles"]) == \
        pytest.approx({0: 15 / 24, 1: 15 / 6})
    assert class_weights_for("none", skewed_dataset, ["circles", "rectangles"]) is None


def test_even_classes_train_without_weights(synthetic_dataset):
    """Balanced weights of even classes are all 1: fit is given none, and trains as before."""
    assert training_class_counts(synthetic_dataset, ["cat", "dog"]) == [16, 16]
    assert class_weights_for("balanced", synthetic_dataset, ["cat", "dog"]) is None


# -- the weights reach the loss, for every training input ------------------------------------------


def _inputs(kind: str, x: np.ndarray, y: np.ndarray, tmp_path):
    """The training inputs the workflows use: cached arrays, cached views, tf.data."""
    if kind == "arrays":
        return ArrayBatches(x, y, len(x))
    if kind == "views":
        cached = CachedViews(views=[x], labels=y, path=tmp_path,
                             key=ViewsKey.make("features", "layer", {}, 0), computed=0)
        return ViewBatches(cached, len(x))
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))


@pytest.mark.parametrize("binary", [False, True], ids=["3 classes", "2 classes"])
@pytest.mark.parametrize("kind", ["arrays", "views", "tf.data"])
def test_the_training_loss_is_weighted_by_class(kind, binary, tmp_path):
    """With the weights frozen (learning rate 0), the epoch's loss is the mean over images of
    weight(class) * crossentropy, and not the plain mean."""
    rng = np.random.default_rng(1)
    counts = [8, 2] if binary else [6, 3, 1]
    labels = np.repeat(np.arange(len(counts)), counts)
    x = rng.normal(size=(len(labels), 4)).astype("float32")
    y = labels.astype("float32").reshape(-1, 1) if binary else labels.astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        1 if binary else len(counts), activation="sigmoid" if binary else "softmax")])
    loss = keras.losses.BinaryCrossentropy(reduction=None) if binary else \
        keras.losses.SparseCategoricalCrossentropy(reduction=None)
    model.compile(keras.optimizers.SGD(learning_rate=0.0),
                  "binary_crossentropy" if binary else "sparse_categorical_crossentropy")
    per_image = np.asarray(loss(y, model.predict(x, verbose=0)))
    weights = balanced_class_weights(counts)

    run = Run.create(tmp_path, "scratch", kind)
    run.write_record(RunRecord("scratch", str(tmp_path), [str(c) for c in counts], 4))
    fit_into_run(model, run, _inputs(kind, x, y, tmp_path), (x, y), epochs=1, verbose=0,
                 class_weight=weights)
    trained = run.read_history()["loss"][0]
    expected = np.mean([weights[c] for c in labels] * per_image)
    assert trained == pytest.approx(expected, rel=1e-5)
    assert abs(trained - per_image.mean()) > 1e-3  # the weights made a difference


# -- a workflow records the choice and trains differently -----------------------------------------


@pytest.fixture(scope="module")
def scratch_runs(skewed_dataset, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    return {option: train_scratch(ScratchConfig(
        data_dir=skewed_dataset, models_dir=models, run_name=option, image_size=48,
        training=TrainingOptions(batch_size=8, epochs=1, learning_rate=1e-3,
                                 class_weight=option),
    ), verbose=0) for option in CLASS_WEIGHTS}


def test_the_run_records_the_class_weight_and_balanced_changes_training(scratch_runs):
    for option, run in scratch_runs.items():
        assert run.record().config["training"]["class_weight"] == option
        assert run.record().status == "completed"
    none, balanced = (scratch_runs[o].read_history() for o in ("none", "balanced"))
    assert balanced["loss"][0] != pytest.approx(none["loss"][0], rel=1e-3)


def test_the_default_is_one_of_the_choices_and_the_commands():
    assert DEFAULT_CLASS_WEIGHT in CLASS_WEIGHTS
    assert TrainingOptions().class_weight == DEFAULT_CLASS_WEIGHT
    for command in ("train", "extract", "finetune"):
        params = {p.name: p for p in cli.main.commands[command].params}
        assert params["class_weight"].default == DEFAULT_CLASS_WEIGHT


# -- bad values ------------------------------------------------------------------------------------


def test_a_bad_value_is_one_line_naming_the_field_and_the_choices(skewed_dataset, tmp_path):
    with pytest.raises(PipelineError) as caught:
        TrainingOptions(class_weight="Balanced").validate()
    message = str(caught.value)
    assert "\n" not in message and "`class_weight` 'Balanced'" in message
    assert "none, balanced" in message
    models = tmp_path / "models"
    with pytest.raises(PipelineError, match="class_weight"):
        train_scratch(ScratchConfig(data_dir=skewed_dataset, models_dir=models, image_size=48,
                                    training=TrainingOptions(epochs=1, class_weight="equal")),
                      verbose=0)
    assert not models.exists() or not any(models.iterdir())  # refused before any run folder


@pytest.mark.parametrize("command", ["train", "extract", "finetune"])
def test_the_command_line_refuses_a_bad_value_in_one_line(command, tmp_path):
    args = [command, *([str(tmp_path)] if command == "finetune" else []),
            "--class-weight", "equal"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert error == ["Error: Invalid value for '--class-weight': 'equal' is not one of "
                     "'none', 'balanced'."]
