"""The command line: readable help everywhere, one-line errors, and a small end-to-end session."""

from __future__ import annotations

import click
import numpy as np
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


def _choices(command: str, option: str) -> tuple[str, ...]:
    params = {p.name: p for p in cli.main.commands[command].params}
    return tuple(params[option].type.choices)


def test_choice_lists_are_the_registries():
    from pipeline.models.bases import BASES
    from pipeline.models.heads import HEADS
    from pipeline.models.optimizers import OPTIMIZERS
    from pipeline.models.preprocessing import MODES
    from pipeline.training.options import PRECISIONS

    assert _choices("extract", "base") == tuple(BASES)
    assert _choices("extract", "head") == tuple(HEADS)
    assert _choices("extract", "preprocessing") == tuple(MODES)
    assert _choices("train", "architecture") == ("convnet", "mini_xception")
    for command in ("train", "extract", "finetune"):
        assert _choices(command, "optimizer") == OPTIMIZERS
        assert _choices(command, "precision") == PRECISIONS


def test_every_name_list_is_a_registry():
    """The names ``--help`` lists without TensorFlow are the registries' own, everywhere."""
    import importlib

    from pipeline.commands.choices import REGISTRIES, Names

    for where, names in REGISTRIES.items():
        module, attribute = where.split(":")
        assert names == tuple(getattr(importlib.import_module(module), attribute)), where
    offered = [p.type.choices for _, command in _walk(cli.main) for p in command.params
               if isinstance(p.type, Names)]
    assert len(offered) >= 5 and all(tuple(c) in REGISTRIES.values() for c in offered)


def _walk(group: click.Group):
    for command in group.commands.values():
        yield command.name, command
        if isinstance(command, click.Group):
            yield from _walk(command)


def test_library_messages_name_fields_and_the_cli_shows_its_own_flags(tmp_path):
    from pipeline.errors import PipelineError
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    with pytest.raises(PipelineError, match=r"^`epochs` must be at least 1"):
        train_scratch(ScratchConfig(data_dir=tmp_path, models_dir=tmp_path,
                                    training=TrainingOptions(epochs=0)))
    result = CliRunner().invoke(cli.main, ["train", "--epochs", "0", "--lr", "-1"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --lr must be a positive finite number")
    result = CliRunner().invoke(cli.main, ["train", "--epochs", "0"])
    assert result.stderr.startswith("error: --epochs must be at least 1")


def test_user_mistakes_are_one_line_errors_with_exit_status_2(tmp_path):
    result = CliRunner().invoke(cli.main, ["train", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "data prepare" in result.stderr
    # The hint names another command's option as that command takes it, not as a field.
    assert "--source" in result.stderr and "`source`" not in result.stderr
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
        "--augment", "--dropout", "0.5", "--precision", "mixed",
    ])
    assert result.exit_code == 0, result.output
    assert (models / "smoke" / "best.keras").is_file() and "validation: accuracy" in result.output
    assert "(completed, 1 epochs, mixed_bfloat16)" in result.output  # no GPU here
    from pipeline.models.saving import load_model

    model = load_model(models / "smoke" / "best.keras")
    assert model.predict(np.zeros((1, 48, 48, 3), "float32"), verbose=0).shape == (1, 1)
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
