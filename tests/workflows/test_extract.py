"""Feature extraction: features once (cached, reused, never stale), a head on them, a full model."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cache.features import FEATURES_FILE, METADATA_FILE
from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.heads import HeadOptions
from pipeline.models.saving import load_model
from pipeline.models.transfer import base_layers, trainable_layer_names
from pipeline.training.options import TrainingOptions
from pipeline.workflows.extract.workflow import ExtractConfig, run_extract

SIZE = 48


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("extract")


def config(data_dir, workspace, epochs=2, **changes) -> ExtractConfig:
    options = dict(data_dir=data_dir, models_dir=workspace / "models", weights="none",
                   image_size=SIZE, head_options=HeadOptions(dense=16),
                   training=TrainingOptions(epochs=epochs, batch_size=8))
    return ExtractConfig(**{**options, **changes})


@pytest.fixture(scope="module")
def first_run(synthetic_dataset, workspace):
    return run_extract(config(synthetic_dataset, workspace), verbose=0)


def feature_paths(run, key="features"):
    return {split: entry.path for split, entry in getattr(run.record(), key).items()}


def test_fast_extract_saves_every_artefact(first_run):
    record = first_run.record()
    assert (record.kind, record.status, record.epochs_run) == ("extract", "completed", 2)
    assert record.weights.source == "none" and record.preprocessing == "caffe"
    assert (record.base, record.base_output, record.precision) == ("vgg16", "block5_pool",
                                                                   "float32")
    for name in ("config.json", "history.json", "history.csv", "best.keras", "final.keras",
                 "metrics.json", "curves.png"):
        assert first_run.file(name).is_file(), name
    assert set(first_run.read_metrics()) == {"validation", "test"}
    features = record.features
    assert {entry.layer for entry in features.values()} == {"block5_pool"}
    assert features["train"].shape == [32, 1, 1, 512]
    assert record.split_features["train"].shape == [32, 3, 3, 512]  # block4_pool
    assert record.split_features["train"].compute_seconds > 0  # computed here, timed


def test_saved_model_takes_raw_images_and_agrees_with_the_head_on_features(
        first_run, synthetic_dataset):
    model = load_model(first_run.file("best.keras"), compile=True)
    assert model.input.shape == (None, SIZE, SIZE, 3)
    assert model.get_layer("block5_conv3") is not None
    assert not any(layer.trainable for layer in base_layers(model))
    assert trainable_layer_names(model) == ["head_dense", "predictions"]
    metrics = first_run.read_metrics()  # computed by the head on cached features
    for split in ("validation", "test"):
        on_images = model.evaluate(load_split(synthetic_dataset, split, SIZE, 8).dataset,
                                   verbose=0, return_dict=True)
        assert on_images["accuracy"] == pytest.approx(metrics[split]["accuracy"])
        assert on_images["loss"] == pytest.approx(metrics[split]["loss"], rel=1e-4, abs=1e-6)


def test_a_second_run_reuses_the_cached_features(first_run, synthetic_dataset, workspace):
    paths = feature_paths(first_run)
    stamps = {split: (path, (workspace / path / FEATURES_FILE).stat().st_mtime_ns)
              for split, path in paths.items()}
    second = run_extract(config(synthetic_dataset, workspace, epochs=1), verbose=0)
    entries = second.record().features
    assert all(entry.reused and entry.compute_seconds == 0 for entry in entries.values())
    for split, (path, mtime) in stamps.items():
        assert entries[split].path == path
        assert (workspace / path / FEATURES_FILE).stat().st_mtime_ns == mtime


def test_a_pooling_head_trains_on_pooled_features_and_its_model_agrees_on_images(
        first_run, synthetic_dataset, workspace):
    run = run_extract(config(synthetic_dataset, workspace, epochs=2, head="gap"), verbose=0)
    record = run.record()
    assert {entry.layer for entry in record.features.values()} == {"head_gap"}
    assert record.features["train"].shape == [32, 512]  # vectors, not 1x1x512 maps
    assert record.base_output == "block5_pool"
    # The expensive part was not run again: pooled from the cached block4_pool output.
    assert all(entry.reused for entry in record.split_features.values())
    model = load_model(run.file("best.keras"), compile=True)
    assert [layer.name for layer in model.layers[-3:]] == ["head_gap", "head_dropout",
                                                           "predictions"]
    metrics = run.read_metrics()
    on_images = model.evaluate(load_split(synthetic_dataset, "test", SIZE, 8).dataset,
                               verbose=0, return_dict=True)
    assert on_images["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert on_images["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4, abs=1e-6)


def test_another_dataset_or_image_size_gets_features_of_its_own(
        first_run, synthetic_dataset, workspace, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(synthetic_dataset, changed)
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["source"] = manifest["source"] + "-elsewhere"
    (changed / "manifest.json").write_text(json.dumps(manifest))
    for run in (
        run_extract(config(changed, workspace, epochs=1), verbose=0),
        run_extract(config(synthetic_dataset, workspace, epochs=1, image_size=40), verbose=0),
    ):
        entries = run.record().features
        assert not any(entry.reused for entry in entries.values())
        assert set(feature_paths(run).values()).isdisjoint(feature_paths(first_run).values())


def test_a_damaged_or_foreign_cache_is_recomputed_with_a_warning(
        first_run, synthetic_dataset, workspace, tmp_path, capsys):
    cache = tmp_path / "features"
    shutil.copytree(workspace / "models" / "features", cache)
    record = first_run.record()

    def entry(kind, split):
        return cache / getattr(record, kind)[split].path.split("/")[-1]

    def truncate(folder):
        (folder / FEATURES_FILE).write_bytes((folder / FEATURES_FILE).read_bytes()[:-100])

    train_output = entry("features", "train")
    meta = json.loads((train_output / METADATA_FILE).read_text())
    meta["key"]["split"] = "test"  # another split's features under this key
    (train_output / METADATA_FILE).write_text(json.dumps(meta))
    truncate(entry("split_features", "train"))
    truncate(entry("features", "validation"))
    capsys.readouterr()

    run = run_extract(config(synthetic_dataset, workspace, epochs=1, features_dir=cache),
                      verbose=0)
    warnings = capsys.readouterr().err
    for folder in (train_output, entry("split_features", "train"),
                   entry("features", "validation")):
        assert f"feature cache {folder} is unusable" in warnings
    reused = {kind: {split: e.reused for split, e in getattr(run.record(), kind).items()}
              for kind in ("features", "split_features")}
    assert reused["features"] == {"train": False, "validation": False, "test": True}
    # validation's block5_pool came again from its sound block4_pool, train's from images.
    assert reused["split_features"] == {"train": False, "validation": True, "test": True}
    original = np.load(workspace / record.features["train"].path / FEATURES_FILE)
    np.testing.assert_allclose(np.load(train_output / FEATURES_FILE), original, rtol=1e-5)


def test_extract_with_augmentation_and_no_views_trains_the_frozen_base_end_to_end(
        synthetic_dataset, workspace):
    run = run_extract(config(synthetic_dataset, workspace, epochs=1, augment=True, views=0),
                      verbose=0)
    record = run.record()
    assert record.status == "completed" and record.features is None
    model = load_model(run.file("best.keras"))
    assert [layer.name for layer in model.layers][:3] == ["image", "augmentation", "preprocess"]
    assert trainable_layer_names(model) == ["head_dense", "predictions"]
    assert set(run.read_metrics()) == {"validation", "test"}


@pytest.mark.parametrize(("changes", "message"), [
    (dict(image_size=16), "16 is too small for .*vgg16"),
    (dict(base="alexnet"), "'alexnet' is not a conv base"),
    (dict(head="nope"), "`head` 'nope'"),
    (dict(weights="missing.h5"), "no such file"),
    (dict(training=TrainingOptions(optimizer="adagrad")), "`optimizer` 'adagrad'"),
])
def test_bad_options_are_refused_before_any_work(synthetic_dataset, workspace, changes, message):
    with pytest.raises(PipelineError, match=message):
        run_extract(config(synthetic_dataset, workspace, **changes), verbose=0)


def test_a_taken_run_name_is_refused_before_any_work(first_run, synthetic_dataset, workspace):
    with pytest.raises(PipelineError, match="already exists"):
        run_extract(config(synthetic_dataset, workspace, run_name=first_run.name), verbose=0)


def test_no_prepared_dataset_says_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match="data prepare"):
        run_extract(config(tmp_path / "nothing", tmp_path), verbose=0)


def test_cli_prints_errors_in_one_line_naming_its_flags(synthetic_dataset, tmp_path):
    from cli import main

    result = CliRunner().invoke(main, ["extract", "--data", str(tmp_path / "none"),
                                       "--models-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "data prepare" in result.output
    result = CliRunner().invoke(main, ["extract", "--data", str(synthetic_dataset),
                                       "--models-dir", str(tmp_path), "--head", "flatten",
                                       "--multi-size", "48,64"])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "--multi-size needs a head" in result.stderr and "not --head flatten" in result.stderr


def test_mixed_precision_caches_float32_features_of_its_own_and_saves_a_loadable_model(
        first_run, synthetic_dataset, workspace):
    run = run_extract(config(synthetic_dataset, workspace, epochs=1,
                             training=TrainingOptions(epochs=1, batch_size=8,
                                              precision="mixed")), verbose=0)
    record = run.record()
    assert record.precision == "mixed_bfloat16"  # no GPU here
    assert keras.config.dtype_policy().name == "float32", "the previous policy is restored"
    assert set(feature_paths(run).values()).isdisjoint(feature_paths(first_run).values())
    stored = np.load(workspace / record.features["train"].path / FEATURES_FILE)
    assert stored.dtype == np.float32
    model = load_model(run.file("best.keras"))
    assert model.get_layer("block1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert probabilities.dtype == np.float32 and np.isfinite(probabilities).all()


def test_python_and_the_cli_train_with_the_same_rate_and_batch_and_user_callbacks_run(
        first_run, synthetic_dataset, workspace):
    from cli import main

    class Epochs(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(epoch)

    models = workspace / "same-defaults"
    counter = Epochs()
    from_python = run_extract(ExtractConfig(
        data_dir=synthetic_dataset, models_dir=models, run_name="python", weights="none",
        image_size=SIZE, features_dir=workspace / "models" / "features",
        training=TrainingOptions(epochs=1)), verbose=0, callbacks=[counter])
    result = CliRunner().invoke(main, [
        "extract", "--data", str(synthetic_dataset), "--models-dir", str(models), "--run-name",
        "cli", "--weights", "none", "--image-size", str(SIZE), "--features-dir",
        str(workspace / "models" / "features"), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert counter.seen == [0]
    python_config = from_python.record().config
    cli_config = json.loads((models / "cli" / "config.json").read_text())["config"]
    assert {**cli_config, "run_name": "python"} == python_config
    training = python_config["training"]
    assert (training["learning_rate"], training["batch_size"]) == (2e-5, 20)  # flatten's, 20
