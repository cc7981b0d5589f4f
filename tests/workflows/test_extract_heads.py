"""The custom layers as heads: NetVLAD (k-means start), locally connected, SPP multi-size."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import evaluate_run
from pipeline.layers.netvlad import NetVLAD
from pipeline.models.heads import HeadOptions, build_head, initialise_head
from pipeline.models.saving import load_model
from pipeline.runs.folder import Run
from pipeline.training.options import TrainingOptions
from pipeline.workflows.extract.workflow import ExtractConfig, run_extract
from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

SIZE = 64  # VGG16 leaves a 2x2 feature map: several local descriptors per image


def config(data_dir, tmp_path, **changes) -> ExtractConfig:
    options = dict(data_dir=data_dir, models_dir=tmp_path / "models", weights="none",
                   image_size=SIZE, head_options=HeadOptions(dense=8, clusters=4),
                   training=TrainingOptions(epochs=1, batch_size=8),
                   features_dir=tmp_path.parent / "shared-features")
    return ExtractConfig(**{**options, **changes})


def shared_features(run: Run) -> Path:
    """The ``features_dir`` of ``config``'s extract ``run`` (``<dir>/models/<run>``)."""
    return run.path.parents[2] / "shared-features"


@pytest.fixture(scope="module")
def extracted(synthetic_dataset, tmp_path_factory):
    """``extracted(**changes)``: the extract run of ``config(**changes)``, trained once per
    module (a finetune test continues the very run an extract test looked at)."""
    workspace, runs = tmp_path_factory.mktemp("heads") / "runs", {}

    def run(**changes) -> Run:
        key = repr(sorted(changes.items()))
        if key not in runs:
            runs[key] = run_extract(config(synthetic_dataset, workspace, **changes), verbose=0)
        return runs[key]

    return run


def test_netvlad_head_starts_from_kmeans_centres_of_the_features():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0], [-10.0, 0, 0]])
    # 40 images of 2x2 descriptors, each descriptor near one of the four centres.
    features = centres[rng.integers(0, 4, (40, 2, 2))] + rng.normal(0, 0.1, (40, 2, 2, 3))
    head = build_head("netvlad", (2, 2, 3), 2, HeadOptions(dense=0, dropout=0, clusters=4))
    initialise_head(head.layers, features)
    learned = keras.ops.convert_to_numpy(head.get_layer("head_netvlad").centers)
    nearest = np.linalg.norm(learned[:, None] - centres[None], axis=-1).min(axis=1)
    assert nearest.max() < 0.2, "every centre sits on one of the clusters"


@pytest.mark.parametrize(("head", "layer_type"), [("netvlad", NetVLAD), ("local", None)])
def test_fast_extract_with_a_custom_head_saves_a_model_on_images(head, layer_type, extracted):
    run = extracted(head=head)
    assert run.record().config["head"] == head
    model = load_model(run.file("best.keras"))
    layer = model.get_layer(f"head_{head}")
    assert layer_type is None or isinstance(layer, layer_type)
    images = np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (3, 1) and np.isfinite(probabilities).all()
    assert set(run.read_metrics()) == {"validation", "test"}


def test_spp_head_trains_on_several_image_sizes(extracted):
    run = extracted(head="spp", multi_size=(48, 64))
    record = run.record()
    assert record.status == "completed" and record.config["multi_size"] == [48, 64]
    model = load_model(run.file("final.keras"))
    assert model.input.shape == (None, None, None, 3)
    # Multi-size training alone does not augment: augmentation is asked for with `augment`.
    assert record.config["augment"] is False
    assert "augmentation" not in [layer.name for layer in model.layers]
    for size in (48, 64, 80):
        images = np.zeros((2, size, size, 3), "float32")
        assert model.predict(images, verbose=0).shape == (2, 1)


def test_multi_size_needs_a_head_that_pools_any_size(synthetic_dataset, tmp_path):
    with pytest.raises(PipelineError, match="`multi_size` needs a head"):
        run_extract(config(synthetic_dataset, tmp_path, head="flatten", multi_size=(48, 64)))
    with pytest.raises(PipelineError, match="16 is too small"):
        run_extract(config(synthetic_dataset, tmp_path, head="spp", multi_size=(16, 64)))


@pytest.mark.parametrize("changes", [{"head": "netvlad"}, {"head": "spp", "multi_size": (48, 64)}])
def test_finetune_continues_from_custom_head_runs(changes, extracted, tmp_path):
    source = extracted(**changes)
    run = run_finetune(FinetuneConfig(source_run=source.path, models_dir=tmp_path / "models",
                                      training=TrainingOptions(epochs=1, batch_size=8),
                                      features_dir=shared_features(source)),
                       verbose=0)
    record = run.record()
    assert record.status == "completed" and record.parent_run == str(source.path)
    model = load_model(run.file("final.keras"))
    assert model.get_layer(f"head_{changes['head']}") is not None
    assert "block5_conv1" in record.trainable_layers
    # A finetune run knows its dataset through its extract run: evaluate needs no `data_dir`,
    # and measures on the test images what training measured on the best model.
    evaluation = evaluate_run(run.path, "test")
    assert evaluation.metrics["count"] == 16
    expected = run.read_metrics()["test"]
    assert evaluation.metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert evaluation.metrics["loss"] == pytest.approx(expected["loss"], rel=1e-3, abs=1e-5)
