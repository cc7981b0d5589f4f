"""Fine-tuning: from an extract run, the top block thawed, trained on cached tensors when it can."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.bases import get_base
from pipeline.models.classifier import compile_classifier
from pipeline.models.heads import HeadOptions
from pipeline.models.saving import load_model
from pipeline.models.transfer import build_transfer_model, replace_augmentation, unfreeze
from pipeline.models.weights import WeightsChoice
from pipeline.runs.folder import Run, RunRecord
from pipeline.training.options import TrainingOptions
from pipeline.workflows.finetune.cached_top import cached_top_split
from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

SIZE = 48
BLOCK5_AND_HEAD = ["block5_conv1", "block5_conv2", "block5_conv3", "head_dense", "predictions"]


@pytest.fixture(scope="module")
def workspace(vgg16_workspace):
    return vgg16_workspace


@pytest.fixture(scope="module")
def extract_run(vgg16_extract_run) -> Run:
    """The session's VGG16 extract run (tests/workflows/conftest.py)."""
    return vgg16_extract_run


@pytest.fixture(scope="module")
def finetune_run(extract_run, workspace) -> Run:
    return run_finetune(FinetuneConfig(
        source_run=extract_run.path, models_dir=workspace / "models", augment=False,
        training=TrainingOptions(epochs=2, batch_size=8),
    ), verbose=0)


def test_one_step_on_the_cached_top_equals_one_step_on_the_full_model():
    base = get_base("vgg16")
    keras.utils.set_random_seed(0)
    full = build_transfer_model(base, WeightsChoice("none", "caffe", None, None, ""), 32, 2,
                                "flatten", HeadOptions(dense=16, dropout=0.0))
    twin = replace_augmentation(full, None)  # an independent copy, same weights
    for model in (full, twin):
        unfreeze(model, base, "top")
    initial = {w.path: w.numpy().copy() for w in full.weights}
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    labels = np.array([[0], [1], [1], [0], [1], [0]], "float32")

    compile_classifier(full, 2, "sgd", 0.01)
    full.train_on_batch(images, labels)

    bottom, top = cached_top_split(twin)
    assert bottom.output.shape == (None, 2, 2, 512)  # block4_pool
    compile_classifier(top, 2, "sgd", 0.01)
    top.train_on_batch(bottom.predict_on_batch(images), labels)

    for after_full, after_cached in zip(full.weights, twin.weights, strict=True):
        np.testing.assert_allclose(after_cached.numpy(), after_full.numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=after_full.path)
    moved = {w.path: float(np.abs(w.numpy() - initial[w.path]).max()) for w in full.weights}
    # Far above the tolerance, so a wrong update could not hide in it.
    assert moved["block5_conv1/kernel"] > 1e-5 and moved["head_dense/kernel"] > 1e-5
    assert moved["block4_conv3/kernel"] == 0.0


def test_cached_finetune_trains_block5_and_head_on_cached_block4_pool(finetune_run, extract_run):
    record = finetune_run.record()
    assert record.kind == "finetune" and record.status == "completed"
    assert record.parent_run == str(extract_run.path)
    assert (record.image_size, record.base, record.data_dir) == (
        SIZE, "vgg16", extract_run.record().data_dir)
    assert record.trainable_layers == BLOCK5_AND_HEAD
    assert record.config["training"]["learning_rate"] == 1e-5  # fine-tuning's own
    cached = record.cached_top
    assert cached.split_layer == "block4_pool"
    # extract already computed block4_pool on the way to block5_pool: nothing runs twice.
    assert all(entry.reused for entry in cached.features.values())
    assert cached.features["train"].path == extract_run.record().split_features["train"].path
    for name in ("best.keras", "final.keras", "history.json", "metrics.json", "curves.png"):
        assert finetune_run.file(name).is_file(), name
    assert len(finetune_run.read_history()["val_loss"]) == 2


def test_saved_model_takes_images_matches_its_metrics_and_kept_the_frozen_layers(
        finetune_run, extract_run, synthetic_dataset):
    model = load_model(finetune_run.file("best.keras"), compile=True)
    assert model.input.shape == (None, SIZE, SIZE, 3)
    metrics = finetune_run.read_metrics()
    for split in ("validation", "test"):
        data = load_split(synthetic_dataset, split, SIZE, 8)
        on_images = model.evaluate(data.dataset, verbose=0, return_dict=True)
        assert on_images["accuracy"] == pytest.approx(metrics[split]["accuracy"])
        assert on_images["loss"] == pytest.approx(metrics[split]["loss"], rel=1e-4, abs=1e-6)
    source = load_model(extract_run.file("best.keras"))
    final = load_model(finetune_run.file("final.keras"))
    np.testing.assert_array_equal(final.get_layer("block4_conv3").kernel.numpy(),
                                  source.get_layer("block4_conv3").kernel.numpy())
    assert not np.array_equal(final.get_layer("block5_conv3").kernel.numpy(),
                              source.get_layer("block5_conv3").kernel.numpy())


def test_augmenting_on_the_fly_trains_the_full_model_on_images(extract_run, workspace):
    run = run_finetune(FinetuneConfig(
        source_run=extract_run.path, models_dir=workspace / "models", views=0, unfreeze="3",
        training=TrainingOptions(epochs=1, batch_size=8),
    ), verbose=0)
    record = run.record()
    assert record.cached_top is None
    assert record.trainable_layers == ["block5_conv2", "block5_conv3", "head_dense",
                                       "predictions"]
    model = load_model(run.file("best.keras"))
    assert "augmentation" in [layer.name for layer in model.layers]
    assert set(run.read_metrics()) == {"validation", "test"}


def test_refuses_a_run_that_is_not_an_extract_run(tmp_path):
    scratch = Run.create(tmp_path, "scratch", "a-scratch-run")
    scratch.write_record(RunRecord("scratch", "data/x", ["cat", "dog"], 48))
    with pytest.raises(PipelineError, match="extract run"):
        run_finetune(FinetuneConfig(source_run=scratch.path, models_dir=tmp_path), verbose=0)
    with pytest.raises(PipelineError, match="no such run"):
        run_finetune(FinetuneConfig(source_run=tmp_path / "nothing", models_dir=tmp_path))


def test_cli_reports_a_wrong_run_in_one_line(tmp_path):
    from cli import main

    scratch = Run.create(tmp_path, "scratch", "s")
    scratch.write_record(RunRecord("scratch", "data/x", ["cat", "dog"], 48))
    result = CliRunner().invoke(main, ["finetune", str(scratch.path)])
    assert result.exit_code == 2
    assert "finetune starts from an extract run" in result.output


def test_mixed_precision_finetunes_a_float32_run_under_the_mixed_policy(extract_run, workspace):
    run = run_finetune(FinetuneConfig(
        source_run=extract_run.path, models_dir=workspace / "models", augment=False,
        training=TrainingOptions(epochs=1, batch_size=8, precision="mixed"),
    ), verbose=0)
    record = run.record()
    assert record.precision == "mixed_bfloat16" and record.cached_top is not None
    assert record.cached_top.features["train"].path != (
        extract_run.record().split_features["train"].path), "float32 and mixed caches never mix"
    model = load_model(run.file("final.keras"))
    assert model.get_layer("block5_conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    assert np.isfinite(model.predict(images, verbose=0)).all()


def test_auto_precision_is_mixed_for_fine_tuning_only_where_the_cpu_has_bfloat16(extract_run,
                                                                                workspace):
    from pipeline.training.precision import native_bfloat16

    run = run_finetune(FinetuneConfig(
        source_run=extract_run.path, models_dir=workspace / "models", augment=False,
        training=TrainingOptions(epochs=1, batch_size=8, precision="auto"),
    ), verbose=0)
    assert run.record().precision == ("mixed_bfloat16" if native_bfloat16() else "float32")
