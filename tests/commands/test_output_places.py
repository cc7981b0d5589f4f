"""Every command's output place: a read-only disk, a file where a folder goes, a folder where a
file goes, files already there. One line naming the option, exit status 2, nothing written
half-way, and nothing of the user's replaced without ``--force``. Real tmpfs mounts."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from cli import main
from tests.data.conftest import small_fs  # noqa: F401 - a real tiny tmpfs, shared fixture


def _invoke(*args: str):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def _one_line_error(result, *expected: str) -> None:
    assert result.exit_code == 2, result.output + repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for text in expected:
        assert text in errors[0], errors[0]


@pytest.fixture
def read_only(small_fs):  # noqa: F811
    return small_fs("64k", read_only=True)


def test_a_read_only_place_is_one_line_for_every_output_option(tiny_run, read_only,
                                                               synthetic_dataset):
    run = tiny_run.path
    cases = [
        (("evaluate", run, "-o", read_only / "eval"), "read-only"),
        (("plot", run, "-o", read_only / "curves.png"), "read-only"),
        (("export", run, "-o", read_only / "served"), "read-only"),
        (("report", run, "-o", read_only / "report"), "read-only"),
        (("train", "--data", synthetic_dataset, "--models-dir", read_only, "--epochs", "1",
          "--image-size", "48"), "read-only"),
    ]
    for args, expected in cases:
        _one_line_error(_invoke(*args), expected)
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("command", [
    ("train", "--epochs", "1", "--image-size", "48"),
    ("extract", "--epochs", "1", "--base", "vgg16", "--weights", "none", "--image-size", "48"),
    ("run", "--epochs", "extract=1", "--steps", "extract"),
])
def test_models_dir_naming_a_file_is_one_line(command, synthetic_dataset, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    result = _invoke(*command, "--data", synthetic_dataset, "--models-dir", a_file)
    _one_line_error(result, "--models-dir", "is a file")
    assert a_file.read_text() == "mine"


def test_plot_into_an_existing_folder_writes_inside_it(tiny_run, tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    result = _invoke("plot", tiny_run.path, "-o", folder)
    assert result.exit_code == 0, result.output
    assert (folder / "curves.png").is_file()


def test_report_to_a_path_ending_in_html_writes_that_file(tiny_run, tmp_path):
    target = tmp_path / "out" / "cats.html"
    result = _invoke("report", tiny_run.path, "-o", target)
    assert result.exit_code == 0, result.output
    assert target.is_file() and not target.is_dir() and (target.parent / "cats.md").is_file()
    again = _invoke("report", tiny_run.path, "-o", target)
    _one_line_error(again, "already holds cats.html", "--force")
    assert _invoke("report", tiny_run.path, "-o", target, "--force").exit_code == 0


def test_evaluate_into_a_folder_holding_its_files_needs_force(tiny_run, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.json").write_text('{"my": "numbers"}')
    _one_line_error(_invoke("evaluate", tiny_run.path, "-o", out), "metrics.json", "--force")
    assert (out / "metrics.json").read_text() == '{"my": "numbers"}'
    result = _invoke("evaluate", tiny_run.path, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert "accuracy" in (out / "metrics.json").read_text()


def test_export_to_the_current_folder_writes_into_it(tiny_run, tmp_path, monkeypatch):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run.path, copy)
    monkeypatch.chdir(tmp_path)
    result = _invoke("export", copy, "-o", ".", "--format", "tflite")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.tflite").is_file() and (tmp_path / "run").is_dir()
