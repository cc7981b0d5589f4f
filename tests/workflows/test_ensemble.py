"""``ensemble``: runs of any size averaged into one saved run that validates, evaluates,
predicts and exports like any other; bad members are one clear line, before any folder."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from pipeline.data.image_file import load_image_array
from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import evaluate_run
from pipeline.evaluation.export import export_model
from pipeline.evaluation.predict import predict_paths
from pipeline.evaluation.saved_model import load_run_model
from pipeline.models.ensemble import average_of
from pipeline.runs.folder import Run
from pipeline.training.options import TrainingOptions
from pipeline.workflows.ensemble.config import EnsembleConfig
from pipeline.workflows.ensemble.workflow import build_ensemble
from pipeline.workflows.scratch import ScratchConfig, train_scratch


@pytest.fixture(scope="module")
def bigger_run(synthetic_dataset, tmp_path_factory):
    """A second scratch run on the same photos, at 56 px (``tiny_run`` is 48 px)."""
    return train_scratch(ScratchConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path_factory.mktemp("models"),
        image_size=56, training=TrainingOptions(epochs=1, batch_size=8, learning_rate=1e-3,
                                                seed=7)), verbose=0)


@pytest.fixture(scope="module")
def ensemble_run(tiny_run, bigger_run, tmp_path_factory):
    models = tmp_path_factory.mktemp("ensembles")
    return build_ensemble(EnsembleConfig(members=(tiny_run.path, bigger_run.path),
                                         models_dir=models, run_name="both"), verbose=False)


def test_the_output_is_the_mean_of_the_members_fed_at_their_sizes(tiny_run, bigger_run,
                                                                    ensemble_run):
    images = np.random.default_rng(0).uniform(0, 255, (3, 56, 56, 3)).astype("float32")
    small = keras.layers.Resizing(48, 48, interpolation="bilinear")(images)
    expected = (load_run_model(tiny_run.path).model.predict(small, verbose=0)
                + load_run_model(bigger_run.path).model.predict(images, verbose=0)) / 2
    loaded = load_run_model(ensemble_run.path)
    assert loaded.image_size == 56
    np.testing.assert_allclose(loaded.model.predict(images, verbose=0), expected, atol=1e-5)


def test_the_run_is_recorded_and_validated_like_any_other(tiny_run, bigger_run, ensemble_run):
    record = ensemble_run.record()
    assert (record.kind, record.status, record.image_size) == ("ensemble", "completed", 56)
    members = (load_run_model(path).model for path in (tiny_run.path, bigger_run.path))
    assert record.trainable_parameters == sum(member.count_params() for member in members)
    assert record.class_names == tiny_run.record().class_names
    assert record.config["members"] == [str(tiny_run.path.resolve()),
                                        str(bigger_run.path.resolve())]
    validation = ensemble_run.read_metrics()["validation"]
    assert 0.0 <= validation["accuracy"] <= 1.0 and validation["loss"] > 0
    # Its validation accuracy is what evaluating its saved model on that split gives.
    evaluation = evaluate_run(ensemble_run.path, "validation")
    assert evaluation.metrics["accuracy"] == pytest.approx(validation["accuracy"])
    assert evaluation.metrics["count"] == 16


def test_evaluate_predict_and_export_take_it(ensemble_run, synthetic_dataset, tmp_path):
    assert evaluate_run(ensemble_run.path, "test").metrics["count"] == 16
    photo = sorted((synthetic_dataset / "test").rglob("*.jpg"))[0]
    (row,) = predict_paths(ensemble_run.path, [photo])
    assert row.error is None and row.label in ensemble_run.record().class_names
    served = export_model(load_run_model(ensemble_run.path), tmp_path / "served")
    loaded = tf.saved_model.load(str(served))  # held: its variables live as long as it does
    answer = loaded.serve(load_image_array(photo, 56).round().astype(np.uint8)[None])
    assert answer["probabilities"].numpy()[0].max() == pytest.approx(row.probability, abs=1e-4)


def test_the_command_line_makes_it_and_says_where(tiny_run, bigger_run, tmp_path):
    result = CliRunner().invoke(cli.main, [
        "ensemble", str(tiny_run.path), str(bigger_run.path), "--models-dir", str(tmp_path),
        "--run-name", "pair"])
    assert result.exit_code == 0, result.output
    assert "validation accuracy" in result.output and str(tmp_path / "pair") in result.output
    assert json.loads((tmp_path / "pair" / "config.json").read_text())["kind"] == "ensemble"


def test_models_of_different_outputs_are_refused():
    two = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(1, activation="sigmoid")])
    three = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(PipelineError, match="outputs differ"):
        average_of([two, three], 8)
    with pytest.raises(PipelineError, match="at least 2"):
        average_of([two], 8)


def _refused(config: EnsembleConfig, match: str) -> str:
    with pytest.raises(PipelineError, match=match) as caught:
        build_ensemble(config, verbose=False)
    assert "\n" not in str(caught.value)
    assert not config.models_dir.exists() or not any(config.models_dir.iterdir())
    return str(caught.value)


def test_bad_members_are_one_line_before_any_folder(tiny_run, bigger_run, synthetic_dataset,
                                                     tmp_path):
    models = tmp_path / "models"
    _refused(EnsembleConfig(members=(tiny_run.path,), models_dir=models), "at least 2 runs")
    _refused(EnsembleConfig(members=(tiny_run.path, tiny_run.path), models_dir=models),
             "named twice")
    _refused(EnsembleConfig(members=(tiny_run.path, tmp_path / "nowhere"), models_dir=models),
             "no such run folder")
    # A run of other classes: a copy of bigger_run whose record names them differently.
    other = tmp_path / "other"
    other.mkdir()
    for name in ("best.keras", "config.json"):
        (other / name).write_bytes((bigger_run.path / name).read_bytes())
    record = json.loads((other / "config.json").read_text())
    record["class_names"] = ["apples", "pears"]
    (other / "config.json").write_text(json.dumps(record))
    message = _refused(EnsembleConfig(members=(tiny_run.path, other), models_dir=models),
                       "differ")
    assert "apples" in message
    # A run that did not complete.
    record["class_names"], record["status"] = tiny_run.record().class_names, "interrupted"
    (other / "config.json").write_text(json.dumps(record))
    _refused(EnsembleConfig(members=(tiny_run.path, other), models_dir=models),
             "did not complete")
    assert Run.open(tiny_run.path).record().status == "completed"  # members untouched
