"""Feature extraction: features once (cached, reused, never stale), a head on them, a full model."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.features import FEATURES_FILE, METADATA_FILE
from pipeline.models.transfer import base_layers, trainable_layer_names
from pipeline.workflows.extract import ExtractConfig, run_extract

SIZE = 48


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("extract")


def config(data_dir, workspace, **changes) -> ExtractConfig:
    options = dict(data_dir=data_dir, models_dir=workspace / "models", weights="none",
                   image_size=SIZE, epochs=2, batch_size=8, dense=16)
    return ExtractConfig(**{**options, **changes})


@pytest.fixture(scope="module")
def first_run(synthetic_dataset, workspace):
    return run_extract(config(synthetic_dataset, workspace), verbose=0)


def feature_paths(run, key="features"):
    return {split: entry["path"] for split, entry in run.read_config()[key].items()}


def test_fast_extract_saves_every_artefact(first_run):
    document = first_run.read_config()
    assert (document["kind"], document["status"], document["epochs_run"]) == ("extract",
                                                                               "completed", 2)
    assert document["weights"]["source"] == "none" and document["preprocessing"] == "caffe"
    for name in ("config.json", "history.json", "history.csv", "best.keras", "final.keras",
                 "metrics.json", "curves.png"):
        assert first_run.file(name).is_file(), name
    assert set(first_run.read_metrics()) == {"validation", "test"}
    features = document["features"]
    assert {entry["layer"] for entry in features.values()} == {"block5_pool"}
    assert features["train"]["shape"] == [32, 1, 1, 512]
    assert document["split_features"]["train"]["shape"] == [32, 3, 3, 512]  # block4_pool


def test_saved_model_takes_raw_images_and_agrees_with_the_head_on_features(
        first_run, synthetic_dataset):
    model = keras.models.load_model(first_run.file("best.keras"), safe_mode=True)
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
    second = run_extract(config(synthetic_dataset, workspace, epochs=1, head="gap"), verbose=0)
    entries = second.read_config()["features"]
    assert all(entry["reused"] for entry in entries.values())
    for split, (path, mtime) in stamps.items():
        assert entries[split]["path"] == path
        assert (workspace / path / FEATURES_FILE).stat().st_mtime_ns == mtime


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
        entries = run.read_config()["features"]
        assert not any(entry["reused"] for entry in entries.values())
        assert set(feature_paths(run).values()).isdisjoint(feature_paths(first_run).values())


def test_a_damaged_or_foreign_cache_is_recomputed_with_a_warning(
        first_run, synthetic_dataset, workspace, tmp_path, capsys):
    cache = tmp_path / "features"
    shutil.copytree(workspace / "models" / "features", cache)
    document = first_run.read_config()

    def entry(kind, split):
        return cache / document[kind][split]["path"].split("/")[-1]

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
    reused = {kind: {split: e["reused"] for split, e in run.read_config()[kind].items()}
              for kind in ("features", "split_features")}
    assert reused["features"] == {"train": False, "validation": False, "test": True}
    # validation's block5_pool came again from its sound block4_pool, train's from images.
    assert reused["split_features"] == {"train": False, "validation": True, "test": True}
    original = np.load(workspace / document["features"]["train"]["path"] / FEATURES_FILE)
    np.testing.assert_allclose(np.load(train_output / FEATURES_FILE), original, rtol=1e-5)


def test_extract_with_augmentation_trains_the_frozen_base_end_to_end(synthetic_dataset, workspace):
    run = run_extract(config(synthetic_dataset, workspace, epochs=1, augment=True), verbose=0)
    document = run.read_config()
    assert document["status"] == "completed" and "features" not in document
    model = keras.models.load_model(run.file("best.keras"), safe_mode=True)
    assert [layer.name for layer in model.layers][:3] == ["image", "augmentation", "preprocess"]
    assert trainable_layer_names(model) == ["head_dense", "predictions"]
    assert set(run.read_metrics()) == {"validation", "test"}


@pytest.mark.parametrize(("changes", "message"), [
    (dict(image_size=16), "too small for --base vgg16"),
    (dict(base="alexnet"), "--base 'alexnet' is not a conv base"),
    (dict(head="nope"), "--head 'nope'"),
    (dict(weights="missing.h5"), "no such file"),
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


def test_cli_prints_errors_in_one_line(tmp_path):
    from cli import main

    result = CliRunner().invoke(main, ["extract", "--data", str(tmp_path / "none"),
                                       "--models-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "data prepare" in result.output
