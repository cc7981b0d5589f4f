"""The workflows' configs: light to import, every default defined once and read by the command
line from there, the same defaults from Python and from the CLI, old run records still read."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pipeline.data.augment_options import DEFAULT_VIEWS
from pipeline.data.defaults import DEFAULT_DATA_DIR, DEFAULT_SEED
from pipeline.errors import PipelineError
from pipeline.runs.folder import EXTRACT, FINETUNE, SCRATCH, Run, RunRecord
from pipeline.training.options import TrainingOptions
from pipeline.workflows.chapter import presets
from pipeline.workflows.chapter.plan import ChapterConfig, with_data_dir
from pipeline.workflows.extract.config import DEFAULT_BASE, ExtractConfig
from pipeline.workflows.finetune.config import FinetuneConfig, with_defaults
from pipeline.workflows.scratch.config import ScratchConfig

REPO = Path(__file__).resolve().parents[2]
CONFIG_MODULES = ("pipeline.workflows.extract.config", "pipeline.workflows.finetune.config",
                  "pipeline.workflows.scratch.config", "pipeline.workflows.scratch",
                  "pipeline.workflows.chapter.plan", "pipeline.data.augment_options")


def test_the_config_modules_import_no_tensorflow():
    code = (f"import sys\nfor name in {CONFIG_MODULES!r}:\n    __import__(name)\n"
            "heavy = sorted({'keras', 'tensorflow'} & set(sys.modules))\nprint(heavy)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_shared_defaults_are_one_value():
    for config in (ScratchConfig(), ExtractConfig(), with_data_dir(ChapterConfig())):
        assert config.data_dir == DEFAULT_DATA_DIR
    assert ExtractConfig().views == FinetuneConfig().views == DEFAULT_VIEWS
    assert TrainingOptions().seed == ChapterConfig().seed == DEFAULT_SEED
    assert ExtractConfig().base == DEFAULT_BASE


def _defaults(command: click.Command) -> dict:
    ctx = click.Context(command)
    return {param.name: param.get_default(ctx) for param in command.params}


def test_the_run_commands_defaults_are_chapter_configs():
    from pipeline.cli import main

    defaults = _defaults(main.commands["run"])
    fields = {field.name: getattr(ChapterConfig(), field.name)
              for field in dataclasses.fields(ChapterConfig)}
    assert set(defaults) <= set(fields)
    for name, value in defaults.items():
        wanted = tuple(value) if name == "split_sizes" and value is not None else value
        assert wanted == fields[name], name
    assert defaults["split_sizes"] is None and defaults["seed"] == 1337  # the layout's default


def test_step_names_are_not_run_kinds():
    assert {SCRATCH, EXTRACT, FINETUNE} <= set(presets.TRAINING_STEPS)  # a step per kind ...
    assert set(presets.BOOK_STEPS) - {SCRATCH, EXTRACT, FINETUNE} == {
        presets.STEP_SCRATCH_AUGMENT, presets.STEP_EXTRACT_AUGMENT}  # ... and two more
    assert set(presets.TRAINING_STEPS) - set(presets.BOOK_STEPS) == {
        presets.STEP_EXTRACT_SECOND, presets.STEP_FINETUNE_SECOND, presets.STEP_ENSEMBLE}
    assert not hasattr(presets, "EXTRACT") and not hasattr(presets, "SCRATCH")


def test_a_learning_rate_left_unset_is_the_workflows_the_same_from_python_and_the_cli():
    from pipeline.cli import main

    for command in ("train", "extract", "finetune"):
        cli_training = _defaults(main.commands[command])
        given = {f.name: cli_training[f.name] for f in dataclasses.fields(TrainingOptions)}
        assert TrainingOptions(**{**given, "epochs": 3}) == TrainingOptions(epochs=3), command
    resolved = with_defaults(FinetuneConfig(training=TrainingOptions(epochs=3))).training
    assert (resolved.learning_rate, resolved.batch_size) == (1e-5, 20)
    explicit = with_defaults(FinetuneConfig(training=TrainingOptions(learning_rate=1e-4)))
    assert explicit.training.learning_rate == 1e-4


@pytest.mark.parametrize("name", ["train_scratch", "run_extract", "run_finetune", "run_chapter"])
def test_every_entry_point_documents_its_arguments_and_takes_callbacks(name):
    from pipeline.workflows.chapter.workflow import run_chapter
    from pipeline.workflows.extract.workflow import run_extract
    from pipeline.workflows.finetune.workflow import run_finetune
    from pipeline.workflows.scratch import train_scratch

    function = {"train_scratch": train_scratch, "run_extract": run_extract,
                "run_finetune": run_finetune, "run_chapter": run_chapter}[name]
    doc = inspect.getdoc(function)
    assert "Args:" in doc and "callbacks:" in doc and "For example::" in doc
    example = doc.split("For example::")[1].strip().splitlines()
    assert len(example) == 3
    assert inspect.signature(function).parameters["callbacks"].default == ()


@pytest.mark.parametrize(("old", "new"), [
    ({"augment": False, "views": 8}, {"augment": True, "views": 8}),  # old default: views
    ({"augment": False, "views": 0}, {"augment": False, "views": 0}),  # old: no augmentation
    ({"augment": True, "views": 8}, {"augment": True, "views": 0}),  # old: the exact path
])
def test_a_version_2_finetune_record_reads_and_resumes_in_todays_words(tmp_path, old, new):
    config = {**dataclasses.asdict(FinetuneConfig(run_name="old")), "source_run": "x",
              "models_dir": str(tmp_path), "data_dir": None}
    record = RunRecord(FINETUNE, "data/x", ["cat", "dog"], 32, config={**config, **old},
                       status="interrupted", epochs_run=1, last_epoch=1)
    folder = tmp_path / "old"
    folder.mkdir()
    document = {**record.to_dict(), "version": 2}
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.warns(UserWarning, match="did not complete"):
        read = Run.open(folder).record()
    assert {key: read.config[key] for key in new} == new
    resumed = Run.create(tmp_path, FINETUNE, "old")
    assert resumed.resuming
    with pytest.raises(PipelineError, match="`augment` was"):  # another training: refused
        resumed.write_record(dataclasses.replace(
            record, config={**config, **new, "augment": not new["augment"]}, status="running"))
    written = resumed.write_record(dataclasses.replace(
        record, config={**config, **new}, status="running", epochs_run=0, last_epoch=None))
    assert written.resumed and written.version == 3 and written.epochs_run == 1
