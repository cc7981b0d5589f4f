"""Evaluating a run writes its numbers and pictures, and the numbers are Keras' own."""

import json

import numpy as np
import pytest

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import evaluate_run
from pipeline.models.saving import load_model


@pytest.fixture(scope="module")
def evaluation(tiny_run):
    return evaluate_run(tiny_run.path, "test", top_wrong=4)


def test_writes_metrics_confusion_matrix_and_contact_sheet(evaluation, tiny_run, open_png):
    assert evaluation.out_dir == tiny_run.file("evaluation-test")
    names = sorted(path.name for path in evaluation.files)
    assert names == ["confusion_matrix.json", "confusion_matrix.png", "metrics.json",
                     "most_wrong.png"]
    assert all(path.is_file() for path in evaluation.files)
    open_png(evaluation.out_dir / "confusion_matrix.png", (300, 250))
    open_png(evaluation.out_dir / "most_wrong.png", (250, 250))
    saved = json.loads((evaluation.out_dir / "metrics.json").read_text())
    assert saved["split"] == "test" and saved["count"] == 16 and saved["model"] == "best.keras"
    assert set(saved["per_class"]) == {"cat", "dog"} and "roc_auc" in saved
    recalls = [saved["per_class"][name]["recall"] for name in ("cat", "dog")]
    assert saved["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert saved["macro_f1"] == pytest.approx(saved["macro_avg"]["f1"])
    matrix = json.loads((evaluation.out_dir / "confusion_matrix.json").read_text())
    assert matrix["classes"] == ["cat", "dog"] and np.sum(matrix["matrix"]) == 16


def test_accuracy_and_loss_equal_model_evaluate(evaluation, tiny_run, synthetic_dataset):
    model = load_model(tiny_run.file("best.keras"), compile=True)
    expected = model.evaluate(load_split(synthetic_dataset, "test", 48, 8).dataset, verbose=0,
                              return_dict=True)
    assert evaluation.metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert evaluation.metrics["loss"] == pytest.approx(expected["loss"], rel=1e-4)


def test_most_wrong_are_real_mistakes_named_by_their_files(evaluation):
    wrong = evaluation.metrics["most_wrong"]
    matrix = np.array(evaluation.metrics["confusion_matrix"])
    assert len(wrong) == min(4, matrix.sum() - np.trace(matrix))
    probabilities = [entry["probability"] for entry in wrong]
    assert probabilities == sorted(probabilities, reverse=True)
    for entry in wrong:
        assert entry["predicted"] != entry["true"] and entry["probability"] >= 0.5
        assert f"/test/{entry['true']}/" in entry["file"]  # the file sits in its true class


def test_final_model_and_other_splits_go_to_their_own_folder(tiny_run, tmp_path):
    result = evaluate_run(tiny_run.path, "validation", which="final", top_wrong=0)
    assert result.out_dir == tiny_run.file("evaluation-validation-final")
    assert result.metrics["model"] == "final.keras" and result.metrics["count"] == 16
    elsewhere = evaluate_run(tiny_run.path, "test", out_dir=tmp_path / "eval", top_wrong=0)
    assert (tmp_path / "eval" / "metrics.json").is_file()
    assert elsewhere.metrics["most_wrong"] == []


def test_user_mistakes_are_clear_errors(tiny_run, tmp_path):
    with pytest.raises(PipelineError, match="unknown split"):
        evaluate_run(tiny_run.path, "holdout")
    with pytest.raises(PipelineError, match="not there"):
        evaluate_run(tiny_run.path, data_dir=tmp_path / "moved")
    with pytest.raises(PipelineError, match="no such run folder"):
        evaluate_run(tmp_path / "no-run")


def test_three_classes_with_a_softmax_output(tmp_path):
    from pipeline.data.synth import write_synthetic_dataset
    from pipeline.models.saving import save_model
    from pipeline.models.scratch import build_scratch_convnet
    from pipeline.runs.folder import Run, RunRecord

    data = write_synthetic_dataset(tmp_path / "three", classes=("a", "b", "c"), sizes=(2, 2, 3),
                                   image_size=48, seed=1)
    run = Run.create(tmp_path / "models", "scratch", "untrained")
    run.write_record(RunRecord("scratch", str(data), ["a", "b", "c"], image_size=48,
                               status="completed"))  # an unfinished run never falls back
    save_model(build_scratch_convnet(48, 3), run.file("final.keras"))
    result = evaluate_run(run.path, "test", top_wrong=3)
    assert result.metrics["model"] == "final.keras"  # best.keras is missing: the other one
    assert result.metrics["count"] == 9 and "roc_auc" not in result.metrics
    assert np.array(result.metrics["confusion_matrix"]).shape == (3, 3)
    assert set(result.metrics["per_class"]) == {"a", "b", "c"}
