"""The run directory: creation, history files, metrics and clear errors."""

import csv
import json

import pytest

from pipeline.errors import PipelineError
from pipeline.runs import Run


def test_create_names_runs_by_kind_and_never_reuses_a_folder(tmp_path):
    first = Run.create(tmp_path, "scratch")
    second = Run.create(tmp_path, "scratch")
    assert first.name.startswith("scratch-") and first.path != second.path
    named = Run.create(tmp_path, "scratch", "mine")
    (named.path / "x").write_text("x")
    with pytest.raises(PipelineError, match="already exists"):
        Run.create(tmp_path, "scratch", "mine")
    with pytest.raises(PipelineError, match="--run-name"):
        Run.create(tmp_path, "scratch", "../escape")


def test_history_is_written_as_json_and_csv(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_config("scratch", {"epochs": 2})
    run.write_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.8]})
    assert run.read_history()["val_loss"] == [1.0, 0.8]
    rows = list(csv.reader(run.file("history.csv").open()))
    assert rows == [["epoch", "loss", "val_loss"], ["1", "0.9", "1.0"], ["2", "0.5", "0.8"]]
    config = json.loads(run.file("config.json").read_text())
    assert config["kind"] == "scratch" and config["status"] == "running"
    assert "tensorflow" in config["versions"]


def test_metrics_of_several_splits_are_kept_together(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_metrics("validation", {"accuracy": 0.5})
    run.write_metrics("test", {"accuracy": 0.75})
    assert run.read_metrics() == {"validation": {"accuracy": 0.5}, "test": {"accuracy": 0.75}}


def test_open_refuses_folders_that_are_not_runs(tmp_path):
    with pytest.raises(PipelineError, match="no such run folder"):
        Run.open(tmp_path / "missing")
    with pytest.raises(PipelineError, match="not a run folder"):
        Run.open(tmp_path)
    run = Run.create(tmp_path, "scratch")
    run.write_config("scratch", {})
    with pytest.raises(PipelineError, match="no saved model"):
        Run.open(run.path).model_path()
