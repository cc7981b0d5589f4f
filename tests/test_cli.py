"""The command line: readable help everywhere, one-line errors, and a small end-to-end session."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import cli


def _all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


@pytest.mark.parametrize(
    "path", [(), *_all_commands(cli.main)], ids=lambda p: " ".join(p) or "main"
)
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli.main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_user_mistakes_are_one_line_errors_with_exit_status_2(tmp_path):
    result = CliRunner().invoke(cli.main, ["train", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "data prepare" in result.stderr
    result = CliRunner().invoke(cli.main, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.stderr


def test_synth_train_plot_session(tmp_path):
    runner = CliRunner()
    data_root, models = tmp_path / "data", tmp_path / "models"
    result = runner.invoke(cli.main, ["data", "synth", "--data-root", str(data_root),
                                      "--sizes", "8", "4", "4", "--image-size", "48"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.main, [
        "train", "--data", str(data_root / "synthetic"), "--models-dir", str(models),
        "--run-name", "smoke", "--image-size", "48", "--epochs", "1", "--batch-size", "8",
        "--augment", "--dropout", "0.5",
    ])
    assert result.exit_code == 0, result.output
    assert (models / "smoke" / "best.keras").is_file() and "validation: accuracy" in result.output
    out = tmp_path / "curves.png"
    result = runner.invoke(cli.main, ["plot", str(models / "smoke"), "-o", str(out), "--smooth",
                                      "0.5"])
    assert result.exit_code == 0 and out.is_file(), result.output


def test_augment_preview_writes_a_grid(tmp_path):
    from PIL import Image

    image = tmp_path / "photo.jpg"
    Image.new("RGB", (60, 40), (200, 30, 30)).save(image)
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(cli.main, ["data", "augment-preview", str(image), "-o", str(out),
                                           "--count", "5", "--image-size", "48"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as grid:
        assert grid.width > 200 and grid.height > 200
    result = CliRunner().invoke(cli.main, ["data", "augment-preview", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "no such file" in result.stderr
