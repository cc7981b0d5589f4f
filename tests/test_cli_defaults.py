"""Every command's defaults are its config's: the command line restates none of them.

For each command that fills a config, every config field is an option (or an argument) of
the same name, and every option's default is the field's default (a nested config such as
``training`` or ``augmentation``: field by field).
"""

from __future__ import annotations

import dataclasses

import click
import pytest

import cli


def _command(path: str) -> click.Command:
    command = cli.main
    for name in path.split():
        command = command.commands[name]
    return command


def _configs():
    from pipeline.data.prepare import PrepareConfig
    from pipeline.workflows.chapter.plan import ChapterConfig
    from pipeline.workflows.data_check import DataCheckConfig
    from pipeline.workflows.extract.config import ExtractConfig
    from pipeline.workflows.finetune.config import FinetuneConfig
    from pipeline.workflows.lr_find import LrFindConfig
    from pipeline.workflows.scratch.config import ScratchConfig

    return {"train": ScratchConfig, "extract": ExtractConfig, "finetune": FinetuneConfig,
            "run": ChapterConfig, "lr-find": LrFindConfig, "data prepare": PrepareConfig,
            "data check": DataCheckConfig}


NESTED = ("training", "augmentation", "head_options", "lr_schedule")  # one option per field
ARGUMENTS = {"source_run", "data_dir", "source"}  # a command's argument, or a required option


def _field_defaults(config) -> dict:
    """Field name -> default, nested configs flattened (``training.epochs`` -> ``epochs``)."""
    defaults = {}
    for field in dataclasses.fields(config):
        if field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            continue  # required: no default to hold
        if field.name in NESTED:
            defaults.update({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        else:
            defaults[field.name] = value
    return defaults


@pytest.mark.parametrize("path", list(_configs()))
def test_every_option_default_is_the_config_default(path):
    command, config = _command(path), _configs()[path]
    ctx = click.Context(command)
    options = {p.name: p for p in command.params}
    defaults = _field_defaults(config)
    missing = sorted(set(defaults) - set(options) - ARGUMENTS)
    assert not missing, f"{path}: config fields without an option: {missing}"
    for name, default in defaults.items():
        param = options.get(name)
        if param is None or isinstance(param, click.Argument) or param.required:
            continue
        value = param.get_default(ctx)
        if isinstance(default, tuple) and isinstance(value, list | tuple):
            value = tuple(value)
        assert value == default, f"{path} --{name.replace('_', '-')}: {value!r} != {default!r}"


def test_the_checker_sees_a_restated_default(monkeypatch):
    """A default changed in the config and not on the command line is found."""
    from pipeline.workflows.chapter.plan import ChapterConfig

    fields = {f.name: f for f in dataclasses.fields(ChapterConfig)}
    monkeypatch.setattr(fields["seed"], "default", 7)
    with pytest.raises(AssertionError, match="run --seed: 1337 != 7"):
        test_every_option_default_is_the_config_default("run")


def test_training_defaults_left_unset_are_shown_as_the_workflows():
    """``--lr`` and ``--batch-size`` default to None (the workflow fills them in); the help
    still shows the value the workflow uses."""
    from click.testing import CliRunner

    from pipeline.workflows.finetune.config import FinetuneConfig
    from pipeline.workflows.scratch.config import ScratchConfig

    for command, config in (("train", ScratchConfig), ("finetune", FinetuneConfig)):
        shown = " ".join(CliRunner().invoke(cli.main, [command, "--help"]).output.split())
        defaults = config.TRAINING_DEFAULTS
        assert f"Learning rate. [default: {defaults.learning_rate}]" in shown
        assert f"[default: {defaults.batch_size}]" in shown.split("--batch-size", 1)[1][:120]
