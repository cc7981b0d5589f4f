"""Predicting files and folders: one row per image, bad files reported, the rest predicted."""

import csv
import io
import json

import pytest

from pipeline.data.image_file import load_image_array
from pipeline.errors import PipelineError
from pipeline.evaluation.predict import image_files, predict_paths
from pipeline.evaluation.prediction_formats import format_predictions
from pipeline.models.saving import load_model


@pytest.fixture(scope="module")
def photo_folder(synthetic_dataset, tmp_path_factory):
    """Three good images, a corrupt one and a text file, in a folder with a sub-folder."""
    folder = tmp_path_factory.mktemp("photos")
    sources = sorted((synthetic_dataset / "test").rglob("*.jpg"))
    for index, source in enumerate(sources[::6][:3]):
        target = folder / ("sub" if index == 2 else "") / f"{index}-{source.name}"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(source.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image, and not reported")
    return folder


@pytest.fixture(scope="module")
def rows(tiny_run, photo_folder):
    return predict_paths(tiny_run.path, [photo_folder, photo_folder / "missing.jpg"],
                         batch_size=2)


def test_folders_are_walked_for_images_only(photo_folder):
    found = [path.name for path, error in image_files([photo_folder])]
    assert len(found) == 4 and "notes.txt" not in found
    assert found[-1].startswith("2-")  # the sub-folder sorts last


def test_bad_files_are_reported_and_the_rest_predicted(rows):
    errors = {row.path.name: row.error for row in rows if row.error}
    assert set(errors) == {"broken.jpg", "missing.jpg"}
    assert "not a readable image" in errors["broken.jpg"]
    assert errors["missing.jpg"] == "no such file or folder"
    predicted = [row for row in rows if row.error is None]
    assert len(predicted) == 3
    assert all(row.label in ("cat", "dog") and 0.5 <= row.probability <= 1 for row in predicted)


def test_predictions_are_the_models_own(rows, tiny_run):
    model = load_model(tiny_run.file("best.keras"))
    for row in rows:
        if row.error is None:
            p = float(model.predict(load_image_array(row.path, 48)[None], verbose=0)[0, 0])
            assert row.label == ("dog" if p > 0.5 else "cat")
            assert row.probability == pytest.approx(max(p, 1 - p), abs=1e-5)


def test_formats_parse(rows):
    as_json = json.loads(format_predictions(rows, "json"))
    assert [entry["path"] for entry in as_json] == [str(row.path) for row in rows]
    assert set(as_json[0]) == {"path", "class", "probability", "error", "top", "probabilities"}
    good = next(entry for entry in as_json if entry["error"] is None)
    assert list(good["probabilities"]) == ["cat", "dog"]
    assert sum(good["probabilities"].values()) == pytest.approx(1.0)
    assert good["top"] == [{"class": good["class"], "probability": good["probability"]}]
    as_csv = list(csv.DictReader(io.StringIO(format_predictions(rows, "csv"))))
    assert len(as_csv) == len(rows)
    assert list(as_csv[0]) == ["path", "class", "probability", "error", "p(cat)", "p(dog)"]
    broken = next(r for r in as_csv if r["path"].endswith("broken.jpg"))
    assert broken["class"] == "" and broken["error"] and broken["p(cat)"] == ""
    for r in as_csv:
        if not r["error"]:
            assert float(r["probability"]) >= 0.5
            assert float(r[f"p({r['class']})"]) == pytest.approx(float(r["probability"]))
            assert float(r["p(cat)"]) + float(r["p(dog)"]) == pytest.approx(1.0, abs=2e-6)
    table = format_predictions(rows, "table").splitlines()
    assert table[0].split() == ["path", "class", "probability"] and len(table) == len(rows) + 1
    with pytest.raises(PipelineError, match="`fmt`"):
        format_predictions(rows, "xml")


def test_every_class_probability_is_the_models(rows, tiny_run):
    model = load_model(tiny_run.file("best.keras"))
    for row in rows:
        if row.error is None:
            p = float(model.predict(load_image_array(row.path, 48)[None], verbose=0)[0, 0])
            assert row.probabilities["dog"] == pytest.approx(p, abs=1e-5)
            assert row.probabilities["cat"] == pytest.approx(1 - p, abs=1e-5)


def test_top_k_lists_the_most_probable_first(tiny_run, photo_folder):
    rows = predict_paths(tiny_run.path, [photo_folder], top_k=2)
    for row in rows:
        if row.error is None:
            assert [name for name, _ in row.top] == sorted(
                row.probabilities, key=row.probabilities.get, reverse=True)
            assert row.top[0] == (row.label, row.probability)
    table = format_predictions(rows, "table").splitlines()
    assert table[0].split() == ["path", "top", "1", "top", "2"]
    good = next(row for row in rows if row.error is None)
    line = next(line for line in table if line.startswith(str(good.path)))
    assert f"{good.top[1][0]} {good.top[1][1]:.4f}" in line
    header = format_predictions(rows, "csv").splitlines()[0]
    assert header == "path,class,probability,error,class_2,probability_2,p(cat),p(dog)"
    with pytest.raises(PipelineError, match=r"`top_k` 3: this run has 2 classes; choose 1 to 2"):
        predict_paths(tiny_run.path, [photo_folder], top_k=3)
    with pytest.raises(PipelineError, match="`top_k` 0"):
        predict_paths(tiny_run.path, [photo_folder], top_k=0)


def test_an_empty_folder_is_reported(tiny_run, tmp_path):
    rows = predict_paths(tiny_run.path, [tmp_path])
    assert len(rows) == 1 and rows[0].error == "folder holds no images"
