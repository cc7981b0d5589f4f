"""Training from scratch leaves a complete run: config, history, checkpoints, metrics, curves."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.data.augment import AugmentConfig
from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.classifier import compile_classifier
from pipeline.models.saving import load_model
from pipeline.models.scratch import build_scratch_convnet
from pipeline.runs.folder import Run, RunRecord
from pipeline.training.loop import (
    BestCheckpoint,
    augmentation_in_model,
    augmented,
    fit_into_run,
)
from pipeline.training.options import TrainingOptions
from pipeline.workflows.scratch import ScratchConfig, train_scratch


@pytest.fixture(scope="module")
def scratch_run(synthetic_dataset, tmp_path_factory):
    config = ScratchConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path_factory.mktemp("models"), image_size=48,
        augment=True, augmentation=AugmentConfig(pca_color=0.1, placement="model"), dropout=0.5,
        training=TrainingOptions(batch_size=8, epochs=2, learning_rate=1e-3),
    )
    return train_scratch(config, verbose=0)


def test_run_has_every_artefact(scratch_run):
    names = {p.name for p in scratch_run.path.iterdir()}
    assert {"config.json", "history.json", "history.csv", "best.keras", "final.keras",
            "metrics.json", "curves.png"} <= names
    record = scratch_run.record()
    assert record.kind == "scratch" and record.status == "completed"
    assert record.config["augment"] is True
    assert record.config["augmentation"]["rotation"] == 40
    assert record.config["training"]["learning_rate"] == 1e-3
    assert record.class_names == ["cat", "dog"] and record.epochs_run == 2
    assert (record.image_size, record.precision, record.evaluated_model) == (48, "float32",
                                                                             "best.keras")
    history = scratch_run.read_history()
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in history.values())
    assert len(scratch_run.file("history.csv").read_text().splitlines()) == 3


def test_validation_metrics_are_those_of_the_best_checkpoint(scratch_run, synthetic_dataset):
    best = load_model(scratch_run.file("best.keras"), compile=True)
    validation = load_split(synthetic_dataset, "validation", 48, 8)
    expected = best.evaluate(validation.dataset, verbose=0, return_dict=True)
    stored = json.loads(scratch_run.file("metrics.json").read_text())["validation"]
    assert stored["accuracy"] == pytest.approx(expected["accuracy"])
    assert min(scratch_run.read_history()["val_loss"]) == pytest.approx(stored["loss"], rel=1e-4)


def test_saved_model_keeps_augmentation_inactive_at_inference(scratch_run):
    model = load_model(scratch_run.file("final.keras"))
    assert model.get_layer("augmentation") is not None
    images = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    first, second = model.predict(images, verbose=0), model.predict(images, verbose=0)
    np.testing.assert_array_equal(first, second)


def test_augmentation_in_the_data_pipeline_stays_out_of_the_saved_model(synthetic_dataset,
                                                                        tmp_path):
    config = ScratchConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path, image_size=48, augment=True,
        augmentation=AugmentConfig(placement="data"),
        training=TrainingOptions(batch_size=8, epochs=1, learning_rate=1e-3),
    )
    run = train_scratch(config, verbose=0)
    assert run.record().status == "completed"
    saved = load_model(run.file("final.keras"))
    assert "augmentation" not in [layer.name for layer in saved.layers]


def test_augmentation_with_every_part_off_leaves_the_batches_as_they_are(synthetic_dataset,
                                                                          tmp_path):
    # `--augment` with each part at 0 builds no layer: the tf.data placement passes the batches
    # through (it called None before, and training stopped with a traceback).
    nothing = AugmentConfig(0, 0, 0, 0, 0, False, placement="data")
    run = train_scratch(ScratchConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path, image_size=48, augment=True,
        augmentation=nothing, training=TrainingOptions(batch_size=8, epochs=1,
                                                       learning_rate=1e-3)), verbose=0)
    assert run.record().status == "completed"
    images = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    dataset = tf.data.Dataset.from_tensors((images, np.zeros(2)))
    (batch, _), = list(augmented(dataset, None))
    np.testing.assert_array_equal(np.asarray(batch), images)


def test_augmented_batches_differ_on_every_pass():
    import tensorflow as tf

    from pipeline.data.augment import build_augmentation

    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices((images, np.zeros((4, 1)))).batch(4)
    stream = augmented(batches, build_augmentation(AugmentConfig(), seed=1))
    first, second = (next(iter(stream))[0].numpy() for _ in range(2))
    assert first.shape == images.shape
    assert not np.allclose(first, images) and not np.allclose(first, second)


def test_auto_placement_augments_in_tf_data_on_a_cpu():
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible: auto puts augmentation in the model there")
    assert not augmentation_in_model(AugmentConfig())
    assert augmentation_in_model(AugmentConfig(placement="model"))
    with pytest.raises(PipelineError, match="`placement` 'gpu'"):
        AugmentConfig(placement="gpu").validate()


class _StopAtEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_what_was_saved(synthetic_dataset, tmp_path):
    train = load_split(synthetic_dataset, "train", 48, 8)
    validation = load_split(synthetic_dataset, "validation", 48, 8)
    model = compile_classifier(build_scratch_convnet(48, 2), 2, "rmsprop", 1e-4)
    run = Run.create(tmp_path, "scratch")
    run.write_record(RunRecord("scratch", str(synthetic_dataset), ["cat", "dog"], 48))
    outcome = fit_into_run(model, run, train.dataset, validation.dataset, epochs=5,
                           callbacks=[_StopAtEpoch()], verbose=0)
    assert outcome.interrupted and outcome.epochs_run == 2
    assert run.record().status == "interrupted" and run.record().epochs_run == 2
    assert len(run.read_history()["loss"]) == 2
    assert run.file("final.keras").is_file() and run.file("best.keras").is_file()


def test_the_same_process_continues_a_run_it_interrupted(synthetic_dataset, tmp_path):
    # A notebook: Ctrl-C in a cell, then the same cell again, in the same kernel.
    train = load_split(synthetic_dataset, "train", 48, 8)
    validation = load_split(synthetic_dataset, "validation", 48, 8)
    record = RunRecord("scratch", str(synthetic_dataset), ["cat", "dog"], 48)
    for callbacks in ([_StopAtEpoch()], []):
        model = compile_classifier(build_scratch_convnet(48, 2), 2, "rmsprop", 1e-4)
        run = Run.create(tmp_path, "scratch", "notebook")
        run.write_record(record)
        outcome = fit_into_run(model, run, train.dataset, validation.dataset, epochs=4,
                               callbacks=callbacks, verbose=0)
    assert not outcome.interrupted and outcome.epochs_run == 4, outcome
    assert run.record().status == "completed" and len(run.record().resumed) == 1
    assert len(run.read_history()["loss"]) == 4  # 2 epochs, then 2 more: not 4 afresh


def _best_epoch(checkpoint: BestCheckpoint, model, values: list[float]) -> int | None:
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    for epoch, value in enumerate(values):
        checkpoint.on_epoch_end(epoch, {checkpoint.monitor: value})
    return checkpoint.best_epoch


def test_best_checkpoint_minimises_losses_and_maximises_accuracy(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    compile_classifier(model, 2, "rmsprop", 1e-4)
    model.evaluate(np.zeros((2, 4)), np.zeros((2, 1)), verbose=0)  # builds its metrics
    values = [0.6, 0.9, 0.7]
    assert _best_epoch(BestCheckpoint(tmp_path / "a.keras"), model, values) == 1
    accuracy = BestCheckpoint(tmp_path / "b.keras", monitor="val_accuracy")
    assert _best_epoch(accuracy, model, values) == 2 and accuracy.mode == "max"
    assert load_model(tmp_path / "b.keras").count_params() == model.count_params()
    assert _best_epoch(BestCheckpoint(tmp_path / "c.keras", "val_accuracy", mode="min"), model,
                       values) == 1


def test_bad_options_are_clear_errors(synthetic_dataset, tmp_path):
    with pytest.raises(PipelineError, match="`epochs`"):
        train_scratch(ScratchConfig(data_dir=synthetic_dataset, models_dir=tmp_path,
                                    training=TrainingOptions(epochs=0)))
    with pytest.raises(PipelineError, match="`precision` 'half'"):
        train_scratch(ScratchConfig(data_dir=synthetic_dataset, models_dir=tmp_path,
                                    training=TrainingOptions(precision="half")))
    with pytest.raises(PipelineError, match="`image_size` 40"):
        train_scratch(ScratchConfig(data_dir=synthetic_dataset, models_dir=tmp_path, image_size=40))
    with pytest.raises(PipelineError, match="data prepare"):
        train_scratch(ScratchConfig(data_dir=tmp_path / "none", models_dir=tmp_path))
    assert not any(tmp_path.glob("scratch-*")), "no run folder is left behind by a bad option"


def test_mini_xception_trains_at_its_own_size_and_is_recorded(synthetic_dataset, tmp_path):
    config = ScratchConfig(data_dir=synthetic_dataset, models_dir=tmp_path,
                           architecture="mini_xception", run_name="mini",
                           training=TrainingOptions(batch_size=8, epochs=1, learning_rate=1e-3))
    run = train_scratch(config, verbose=0)
    record = run.record()
    assert record.status == "completed" and record.image_size == 180  # the book's size
    assert record.config["architecture"] == "mini_xception"
    assert record.config["image_size"] == 180  # resolved, so a continued run builds the same
    model = load_model(run.file("best.keras"))
    assert model.name == "scratch_mini_xception" and model.input_shape == (None, 180, 180, 3)
    assert "validation" in run.read_metrics()
