"""Test-time augmentation in evaluate and predict: averaged over flips/crops, and recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import evaluate_run
from pipeline.evaluation.predict import predict_paths
from pipeline.models.saving import load_model


def _flip_averaged(model, images: np.ndarray) -> np.ndarray:
    """The reference: the model's output on the images and on their mirror images, averaged."""
    plain = np.asarray(model(images, training=False), dtype="float64")
    mirrored = np.asarray(model(images[:, :, ::-1], training=False), dtype="float64")
    return (plain + mirrored) / 2


def test_evaluate_with_tta_averages_image_and_mirror_and_records_it(
        tiny_run, synthetic_dataset):
    evaluation = evaluate_run(tiny_run.path, "validation", tta=2)
    assert evaluation.out_dir.name == "evaluation-validation-tta2"
    saved = json.loads((evaluation.out_dir / "metrics.json").read_text())
    assert saved["tta"] == 2 and "2 test-time views" in evaluation.summary()

    model = load_model(tiny_run.file("best.keras"))
    data = load_split(synthetic_dataset, "validation", 48, 32, cache=False)
    images = np.concatenate([np.asarray(x) for x, _ in data.dataset])
    labels = np.concatenate([np.asarray(y) for _, y in data.dataset]).reshape(-1)
    expected = _flip_averaged(model, images).reshape(-1)
    assert saved["accuracy"] == pytest.approx(np.mean((expected > 0.5) == labels))

    plain = evaluate_run(tiny_run.path, "validation")
    assert plain.metrics["tta"] == 1 and plain.out_dir.name == "evaluation-validation"


def test_predict_with_tta_reports_the_averaged_probability(tiny_run, synthetic_dataset):
    from pipeline.data.image_file import load_image_array

    path = sorted((synthetic_dataset / "test" / "dog").iterdir())[0]
    row = predict_paths(tiny_run.path, [path], tta=2)[0]
    model = load_model(tiny_run.file("best.keras"))
    dog = float(_flip_averaged(model, load_image_array(path, 48)[None])[0, 0])
    assert row.probability == pytest.approx(dog if row.label == "dog" else 1 - dog, rel=1e-5)


def test_a_tta_count_out_of_range_is_refused(tiny_run):
    with pytest.raises(PipelineError, match="`tta` 13"):
        evaluate_run(tiny_run.path, "validation", tta=13)
    from cli import main

    result = CliRunner().invoke(main, ["predict", str(tiny_run.path), str(tiny_run.path),
                                       "--tta", "0"])
    assert result.exit_code == 2 and "--tta 0" in result.output
