"""``mixup`` and ``cutmix``: training batches mixed in tf.data after augmentation, images and
labels by the same share (CutMix: the share of pixels pasted), the loss and the accuracy
taking the soft targets while validation is never mixed and counts as before, real runs in
float32 and mixed precision recording the options, and one clear line for a bad value or
where the training never sees whole images (issue 26)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from pipeline.data.dataset import load_split
from pipeline.data.synth import class_names, write_synthetic_dataset
from pipeline.errors import PipelineError
from pipeline.models.dominant_class_accuracy import DominantClassAccuracy
from pipeline.models.losses import accuracy_for, loss_for
from pipeline.models.saving import load_model, save_model
from pipeline.models.soft_target_crossentropy import SoftTargetCrossentropy
from pipeline.training.mixing import cutmix_batch, mixed
from pipeline.training.options import TrainingOptions

REPO = Path(cli.__file__).resolve().parent
CLASSES = 6  # one class per image of the test batch: a mixed target names both images
HEIGHT, WIDTH = 12, 20  # not square: rows and columns cannot be swapped unnoticed


def _batches(count: int = 4) -> tf.data.Dataset:
    """Batches of CLASSES random images, image k of class k, as ``load_split`` gives them."""
    images = np.random.default_rng(0).uniform(0, 255, (CLASSES, HEIGHT, WIDTH, 3))
    labels = np.arange(CLASSES, dtype=np.int32)
    return tf.data.Dataset.from_tensors((images.astype("float32"), labels)).repeat(count)


def _pairs(targets: np.ndarray) -> list[tuple[int, float]]:
    """Per image ``i``: its partner ``j`` and its own share, read off its mixed target."""
    pairs = []
    for i, target in enumerate(targets):
        others = [j for j in np.flatnonzero(target > 1e-6) if j != i]
        assert len(others) <= 1 and target.sum() == pytest.approx(1.0, abs=1e-5)
        pairs.append((others[0] if others else i, float(target[i])))
    return pairs


def test_mixup_blends_each_image_and_its_target_by_the_same_share():
    original = next(iter(_batches()))[0].numpy()
    shares = []
    for images, targets in mixed(_batches(), CLASSES, TrainingOptions(mixup=0.4)):
        images, targets = images.numpy(), targets.numpy()
        assert images.dtype == np.float32 and targets.shape == (CLASSES, CLASSES)
        for i, (j, share) in enumerate(_pairs(targets)):
            expected = share * original[i] + (1 - share) * original[j]
            np.testing.assert_allclose(images[i], expected, rtol=1e-5, atol=1e-3)
            shares.append(share)
    assert any(0.05 < share < 0.95 for share in shares)  # it did mix


def test_cutmix_pastes_one_box_whose_area_is_the_partners_share_of_the_target():
    original = next(iter(_batches()))[0].numpy()
    pasted_shares = []
    for images, targets in mixed(_batches(12), CLASSES, TrainingOptions(cutmix=1.0)):
        images, targets = images.numpy(), targets.numpy()
        for i, (j, share) in enumerate(_pairs(targets)):
            from_partner = np.all(images[i] == original[j], axis=-1) & (j != i)
            kept = np.all(images[i] == original[i], axis=-1)
            assert np.all(kept | from_partner)  # every pixel is one image's or the other's
            assert share == pytest.approx(kept.mean(), abs=1e-6)  # exactly the pixels left
            rows, cols = np.nonzero(from_partner)
            if len(rows):  # one rectangle: its bounding box is all pasted
                box = from_partner[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
                assert box.all()
                pasted_shares.append(1 - share)
    assert len(pasted_shares) > 10 and max(pasted_shares) > 0.3


@pytest.mark.parametrize("mixing", ["mixup", "cutmix"])
def test_alpha_is_the_beta_distributions(mixing):
    # Beta(a, a): a large a keeps each share near a half, a small one near 0 or 1.
    labels = tf.range(512) % 2  # two of three classes: the own share is the target's there
    dataset = tf.data.Dataset.from_tensors((tf.zeros((512, 16, 16, 3)), labels))
    spread = {}
    for alpha in (0.05, 200.0):
        targets = next(iter(mixed(dataset, 3, TrainingOptions(**{mixing: alpha}))))[1].numpy()
        own = targets[np.arange(512), labels.numpy()]
        own = own[own < 1.0]  # mixed with the other class
        spread[alpha] = float(np.median(np.abs(own - 0.5)))
    assert spread[200.0] < 0.1 and spread[0.05] > 0.4, spread


def test_two_classes_mix_the_0_to_1_labels():
    # Image k is 1 in column k, 0 elsewhere: a blend shows both images and the share.
    images = np.broadcast_to(np.eye(8, dtype="float32")[:, None, :, None], (8, 2, 8, 3))
    labels = (np.arange(8) % 2).astype("float32").reshape(-1, 1)  # as load_split gives them
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat(3)
    shares = []
    for blended, targets in mixed(dataset, 2, TrainingOptions(mixup=1.0)):
        assert targets.shape == (8, 1)
        columns = blended.numpy().mean(axis=(1, 3))  # (8, 8): each image's share per column
        for i, target in enumerate(targets.numpy()[:, 0]):
            own = columns[i, i]
            partner = [j for j in np.flatnonzero(columns[i] > 1e-6) if j != i]
            other = labels[partner[0], 0] if partner else labels[i, 0]
            assert target == pytest.approx(own * labels[i, 0] + (1 - own) * other, abs=1e-5)
            shares.append(own)
    assert any(0.05 < share < 0.95 for share in shares)


def test_nothing_is_mixed_when_both_are_0():
    dataset = _batches(1)
    assert mixed(dataset, CLASSES, TrainingOptions()) is dataset


def test_cutmix_works_in_a_graph_of_any_batch_size():
    @tf.function(input_signature=[tf.TensorSpec((None, 8, 8, 3)), tf.TensorSpec((None, 3))])
    def mix(images, targets):
        return cutmix_batch(images, targets, 1.0, generator)

    generator = keras.random.SeedGenerator(0)
    for batch in (1, 5):
        images, targets = mix(tf.ones((batch, 8, 8, 3)), tf.one_hot(tf.range(batch) % 3, 3))
        assert images.shape == (batch, 8, 8, 3) and targets.shape == (batch, 3)


# -- the loss and the accuracy ----------------------------------------------------------------

PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]], dtype="float32")


def _cross_entropy(targets: np.ndarray, smoothing: float = 0.0) -> float:
    targets = targets * (1 - smoothing) + smoothing / targets.shape[1]
    return float(np.mean(-np.sum(targets * np.log(PROBABILITIES), axis=1)))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_loss_takes_mixed_targets_and_class_indices(smoothing):
    loss = loss_for(3, smoothing, soft_targets=True)
    assert isinstance(loss, SoftTargetCrossentropy)
    soft = np.array([[0.6, 0.4, 0.0], [0.0, 0.2, 0.8], [0.5, 0.0, 0.5]], dtype="float32")
    assert float(loss(soft, PROBABILITIES)) == pytest.approx(_cross_entropy(soft, smoothing),
                                                             rel=1e-5)
    labels = np.array([0, 2, 1])
    for given in (labels, labels[:, None]):  # validation's indices, (batch,) or (batch, 1)
        assert float(loss(given, PROBABILITIES)) == pytest.approx(
            _cross_entropy(np.eye(3)[labels], smoothing), rel=1e-5)


def test_without_mixing_the_loss_and_metric_are_as_before():
    assert loss_for(5) == "sparse_categorical_crossentropy" and accuracy_for() == "accuracy"
    assert loss_for(2) == "binary_crossentropy"
    assert loss_for(2, soft_targets=True) == "binary_crossentropy"  # takes 0..1 targets
    smoothed = loss_for(2, 0.1, soft_targets=True)
    assert isinstance(smoothed, keras.losses.BinaryCrossentropy)
    assert smoothed.get_config()["label_smoothing"] == pytest.approx(0.1)
    from pipeline.training.skeleton import compile_for_training

    for cutmix, loss in ((0.0, "sparse_categorical_crossentropy"), (1.0, SoftTargetCrossentropy)):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        options = TrainingOptions(learning_rate=1e-3, cutmix=cutmix)
        compile_for_training(model, 3, options, steps_per_epoch=1)
        assert model.loss == loss or isinstance(model.loss, loss)


def test_the_accuracy_counts_validation_as_keras_and_mixed_targets_by_their_largest_share():
    metric = DominantClassAccuracy()
    assert metric.name == "accuracy"
    labels = np.array([0, 1, 1])
    metric.update_state(labels, PROBABILITIES)
    keras_own = keras.metrics.SparseCategoricalAccuracy()
    keras_own.update_state(labels, PROBABILITIES)
    assert float(metric.result()) == pytest.approx(float(keras_own.result()))
    metric.reset_state()
    metric.update_state(np.array([[0.6, 0.4, 0.0], [0.0, 0.3, 0.7], [0.1, 0.9, 0.0]]),
                        PROBABILITIES)
    assert float(metric.result()) == pytest.approx(1.0)
    binary = DominantClassAccuracy()
    binary.update_state(np.array([[1.0], [0.0], [0.7], [0.2]]),
                        np.array([[0.9], [0.6], [0.8], [0.1]], dtype="float32"))
    assert float(binary.result()) == pytest.approx(0.75)


def test_a_model_compiled_for_mixing_saves_and_loads(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss=loss_for(3, 0.1, soft_targets=True),
                  metrics=[accuracy_for(soft_targets=True)])
    model.fit(np.ones((4, 4)), np.eye(3)[[0, 1, 2, 0]], verbose=0)
    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras", compile=True)
    assert isinstance(loaded.loss, SoftTargetCrossentropy)
    assert loaded.loss.label_smoothing == pytest.approx(0.1)
    results = loaded.evaluate(np.ones((4, 4)), np.array([0, 1, 2, 0]), return_dict=True,
                              verbose=0)
    assert set(results) == {"loss", "accuracy"}


# -- real runs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "three",
                                   classes=class_names(3), sizes=(8, 6, 2), image_size=48)


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_a_tiny_run_mixes_with_a_finite_loss_and_records_the_options(synthetic_dataset,
                                                                     tmp_path, precision):
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    run = train_scratch(ScratchConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path, image_size=48, augment=True,
        training=TrainingOptions(batch_size=8, epochs=1, learning_rate=1e-3, mixup=0.2,
                                 cutmix=1.0, precision=precision)), verbose=0)
    record = run.record()
    assert record.status == "completed" and record.precision.startswith(precision)
    assert (record.config["training"]["mixup"], record.config["training"]["cutmix"]) == (0.2, 1.0)
    history = run.read_history()
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_loss"]).all()


def test_validation_is_never_mixed_and_its_metrics_are_right(three_classes, tmp_path):
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    run = train_scratch(ScratchConfig(
        data_dir=three_classes, models_dir=tmp_path, image_size=48,
        training=TrainingOptions(batch_size=8, epochs=1, learning_rate=1e-3, mixup=1.0,
                                 class_weight="none")), verbose=0)
    validation = load_split(three_classes, "validation", 48, 8)
    images = np.concatenate([x.numpy() for x, _ in validation.dataset])
    labels = np.concatenate([y.numpy() for _, y in validation.dataset])
    probabilities = load_model(run.file("best.keras")).predict(images, verbose=0)
    loss = float(np.mean(-np.log(probabilities[np.arange(len(labels)), labels])))
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    measured = run.read_metrics()["validation"]
    assert measured["loss"] == pytest.approx(loss, rel=1e-4)
    assert measured["accuracy"] == pytest.approx(accuracy)
    history = run.read_history()  # validated while training, by the metric built for training
    assert history["val_loss"][0] == pytest.approx(loss, rel=1e-4)
    assert history["val_accuracy"][0] == pytest.approx(accuracy)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-0.5, float("inf"), float("nan")])
def test_a_bad_value_is_one_line_naming_the_option(value):
    for name in ("mixup", "cutmix"):
        with pytest.raises(PipelineError) as caught:
            TrainingOptions(**{name: value}).validate()
        assert "\n" not in str(caught.value) and f"`{name}`" in str(caught.value)


def _one_error_line(stderr: str, words: tuple[str, ...]) -> None:
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if words[0] in line]
    assert len(errors) == 1, stderr
    assert all(word in errors[0] for word in words), errors[0]


def test_the_command_line_refuses_a_bad_value_in_one_line(synthetic_dataset, tmp_path):
    models = tmp_path / "models"
    done = subprocess.run([sys.executable, "cli.py", "train", "--data", str(synthetic_dataset),
                           "--models-dir", str(models), "--mixup", "-1"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    _one_error_line(done.stderr, ("--mixup", "0 (off) or more"))
    assert not models.exists() or not any(models.iterdir())


@pytest.mark.parametrize(("args", "words"), [
    (("train", "--cutmix", "inf"), ("--cutmix", "finite")),
    (("extract", "--mixup", "0.2"), ("--mixup", "cached features", "--views 0")),
    (("run", "--steps", "extract,evaluate", "--cutmix", "1"),
     ("--cutmix", "none of the planned steps", "--views 0")),
])
def test_the_commands_refuse_where_mixing_cannot_apply(synthetic_dataset, tmp_path, args, words):
    models = tmp_path / "models"
    result = CliRunner().invoke(cli.main, [*args, "--data", str(synthetic_dataset),
                                           "--models-dir", str(models)])
    assert result.exit_code == 2
    _one_error_line(result.output, words)
    assert not models.exists() or not list(models.rglob("*.keras"))  # nothing trained


def test_fine_tuning_on_cached_views_or_features_refuses(tmp_path):
    from pipeline.workflows.finetune.config import FinetuneConfig
    from pipeline.workflows.finetune.workflow import run_finetune

    for augment, views in ((True, 4), (False, 0)):
        config = FinetuneConfig(source_run=tmp_path / "absent", augment=augment, views=views,
                                models_dir=tmp_path, training=TrainingOptions(cutmix=1.0))
        with pytest.raises(PipelineError, match=r"`cutmix` mixes .* cached output") as caught:
            run_finetune(config, verbose=0)
        assert "\n" not in str(caught.value) and "`views` 0" in str(caught.value)


def test_augmentation_inside_the_model_would_come_after_the_mixing_and_is_refused(
        synthetic_dataset, tmp_path):
    from pipeline.data.augment_options import AugmentConfig
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    config = ScratchConfig(data_dir=synthetic_dataset, models_dir=tmp_path, augment=True,
                           augmentation=AugmentConfig(placement="model"),
                           training=TrainingOptions(mixup=0.2))
    with pytest.raises(PipelineError, match="`placement` data or auto"):
        train_scratch(config, verbose=0)


# -- run: the steps that train on images mix, the others do not; older digests hold ----------


def test_run_mixes_only_in_the_steps_that_train_on_images(tmp_path):
    from pipeline.workflows.chapter.plan import ChapterConfig, make_plan
    from pipeline.workflows.chapter.steps import mixing_steps, step_config

    config = ChapterConfig(data_dir=tmp_path, steps=("scratch", "extract", "finetune"),
                           mixup=0.3, cutmix=0.5)
    plan = make_plan(config, 100)
    assert mixing_steps(tmp_path, config, plan) == ["scratch"]  # finetune on cached views
    extract = step_config("extract", tmp_path, config, plan)
    assert (extract.training.mixup, extract.training.cutmix) == (0.0, 0.0)
    on_the_fly = ChapterConfig(data_dir=tmp_path, steps=("extract", "finetune"), views=0,
                               mixup=0.3)
    assert mixing_steps(tmp_path, on_the_fly, make_plan(on_the_fly, 100)) == ["finetune"]


def test_a_step_without_mixing_keeps_the_digest_it_had_before_the_options(synthetic_dataset,
                                                                          tmp_path):
    import hashlib

    from pipeline.data.manifest import manifest_checksum, read_manifest
    from pipeline.training.config import config_to_dict
    from pipeline.workflows.chapter.plan import ChapterConfig, make_plan
    from pipeline.workflows.chapter.steps import step_config, step_digest

    manifest = read_manifest(synthetic_dataset)  # even classes: no class weight either
    plain = ChapterConfig(data_dir=synthetic_dataset, steps=("scratch",))
    step = step_config("scratch", tmp_path, plain, make_plan(plain, 32))
    old = config_to_dict(step)
    for later in ("class_weight", "label_smoothing", "mixup", "cutmix", "layer_decay"):
        del old["training"][later]
    before = hashlib.sha256(json.dumps(
        {"config": old, "data": manifest_checksum(manifest), "depends_on": None},
        sort_keys=True).encode()).hexdigest()
    assert step_digest(step, manifest) == before
    mixing = ChapterConfig(data_dir=synthetic_dataset, steps=("scratch",), mixup=0.2)
    mixed_step = step_config("scratch", tmp_path, mixing, make_plan(mixing, 32))
    assert step_digest(mixed_step, manifest) != before


def test_a_run_recorded_before_the_options_continues_as_unmixed(tmp_path):
    from pipeline.runs.continuation import continued
    from pipeline.runs.record import INTERRUPTED, RunRecord
    from pipeline.training.config import config_to_dict
    from pipeline.workflows.scratch.config import ScratchConfig

    def record(**training) -> RunRecord:
        config = config_to_dict(ScratchConfig(run_name="old", training=TrainingOptions(
            class_weight="none", **training)))
        return RunRecord("scratch", str(tmp_path), ["cat", "dog"], 48, config=config)

    old = dataclasses.replace(record(), status=INTERRUPTED, last_epoch=1)
    for later in ("mixup", "cutmix"):
        del old.config["training"][later]  # written before the options existed
    assert continued(old, record()).last_epoch == 1
    with pytest.raises(PipelineError, match=r"`mixup` was 0\.0, now 0\.2"):
        continued(old, record(mixup=0.2))
