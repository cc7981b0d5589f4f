"""The report built from real run folders: numbers from the runs, curves joined, photos shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from cli import main
from pipeline.report.from_runs import report_from_folders, trainable_parameters
from pipeline.runs.folder import Run


def test_each_run_becomes_a_row_with_its_own_numbers(trained_runs):
    extract, finetune = trained_runs
    report = report_from_folders([extract, finetune], gradcam=2)
    first, second = report.runs
    assert (first.name, first.kind, second.name, second.kind) == (
        "extract-a", "extract", "finetune-a", "finetune")
    metrics = Run(extract).read_metrics()
    assert first.val_accuracy == metrics["validation"]["accuracy"]
    assert first.test_accuracy == metrics["test"]["accuracy"]
    assert (first.epochs_run, second.epochs_run) == (3, 2)
    assert second.parent == "extract-a"  # drawn as the continuation of extract-a's epochs
    assert first.wall_time_s > 0 and second.wall_time_s > 0
    # Extraction trains the head only; fine-tuning also block5: far more parameters.
    assert 0 < first.trainable_params < second.trainable_params
    assert second.trainable_params == Run(finetune).record().trainable_parameters
    confusion = json.loads((extract / "evaluation-test" / "confusion_matrix.json").read_text())
    assert [list(row) for row in first.confusion.counts] == confusion["matrix"]
    wrong = json.loads((extract / "evaluation-test" / "metrics.json").read_text())["most_wrong"]
    assert [str(photo.path) for photo in first.wrong_photos] == [w["file"] for w in wrong[:8]]
    explained = [photo.gradcam is not None for photo in first.wrong_photos]
    assert explained == [index < 2 for index in range(len(explained))]


def test_trainable_parameters_are_counted_from_the_model_when_not_recorded(trained_runs):
    extract, _ = trained_runs
    run = Run(extract)
    assert run.record().trainable_parameters is None
    head_only = trainable_parameters(run, run.record())
    # flatten head on VGG16's 1x1x512 output at 32 px: Dense(256) then Dense(1)
    dense = Run(extract).record().config["head_options"]["dense"]
    assert head_only == 512 * dense + dense + dense + 1


def test_report_command_writes_html_and_markdown_with_both_rows(trained_runs, tmp_path):
    extract, finetune = trained_runs
    result = CliRunner().invoke(main, ["report", str(extract), str(finetune),
                                       "-o", str(tmp_path / "out"), "--gradcam", "1"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "report.html").read_text()
    strategies = html.split('<table id="strategies">')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(.*?)</td>", strategies) == ["extract-a", "finetune-a"]
    assert "(after extract-a)" in strategies
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| extract-a |" in markdown and "| finetune-a |" in markdown


def test_report_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output


def test_the_data_and_each_runs_model_are_named(trained_runs):
    extract, _ = trained_runs
    report = report_from_folders([extract], gradcam=0)
    (dataset,) = report.datasets
    record = Run(extract).record()
    assert dataset.path == record.data_dir and dataset.name == Path(record.data_dir).name
    assert dataset.counts["train"] == {"cat": 16, "dog": 16}
    assert dataset.counts["test"] == {"cat": 8, "dog": 8}
    assert report.shows_book, "cats vs dogs: the book's numbers compare"
    (run,) = report.runs
    assert (run.model, run.image_size) == ("vgg16", 32)
    evaluation = json.loads((extract / "evaluation-test" / "metrics.json").read_text())
    assert run.balanced_accuracy == evaluation["balanced_accuracy"]
    assert run.macro_f1 == evaluation["macro_f1"]
    assert set(run.recall) == {"cat", "dog"}


def test_a_17_class_report_names_its_data_and_leaves_the_book_out(flowers_run, tmp_path):
    from pipeline.report import write_report

    report = report_from_folders([flowers_run], gradcam=0)
    (dataset,) = report.datasets
    assert dataset.name == "flowers-17" and len(dataset.class_names) == 17
    assert "lily_of_the_valley" in dataset.class_names and dataset.layout == "class-folders"
    assert sum(dataset.counts["train"].values()) == 17 * 3
    assert not report.shows_book
    assert report.title.startswith("flowers-17")
    html = write_report(report, tmp_path).html.read_text()
    assert "Deep Learning with Python" not in html and "flowers-17" in html
    assert 'class="confusion compact"' in html and "Recall per class" in html
