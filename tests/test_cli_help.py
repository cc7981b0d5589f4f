"""Help that reads well: titled sections, examples, the command the user typed, and no TensorFlow.

``--help`` of every command is rendered in a fresh interpreter that must not load TensorFlow or
Keras (the registries' names come from ``pipeline.commands.choices``), and in well under a
second each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cli

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = ("python cli.py", "small-data", "python -m pipeline")


def _paths(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _paths(command, (*prefix, name))


COMMANDS = dict(_paths(cli.main))


def _help(path, prog_name="small-data") -> str:
    result = CliRunner().invoke(cli.main, [*path, "--help"], prog_name=prog_name)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_option_sits_in_a_titled_section(path):
    command = COMMANDS[path]
    ungrouped = [p.name for p in command.params
                 if isinstance(p, click.Option) and not getattr(p, "group", None)]
    assert not ungrouped, f"{' '.join(path)}: options outside a section: {ungrouped}"
    shown = _help(path)
    for group in command.option_groups:
        assert f"\n{group.title}:\n" in shown
    if not isinstance(command, click.Group):  # a group's only option is --help
        assert command.option_groups, f"{' '.join(path)} has no titled section"


def test_the_big_commands_have_the_usual_sections_in_order():
    for path in (("train",), ("extract",), ("finetune",), ("run",)):
        shown = _help(path)
        titles = [line[:-1] for line in shown.splitlines()
                  if line.endswith(":") and not line.startswith(" ")]
        for title in ("Data", "Model", "Training", "Augmentation", "Devices", "Output"):
            assert title in titles, (path, titles)
        assert titles.index("Data") < titles.index("Model") < titles.index("Training")
        assert titles.index("Training") < titles.index("Output")


@pytest.mark.parametrize("prog", PROGRAMS)
@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "main")
def test_every_help_has_examples_naming_the_command_typed(path, prog):
    shown = _help(path, prog)
    assert shown.startswith(f"Usage: {' '.join((prog, *path))} ")
    examples = shown.split("\nExamples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert examples, shown
    assert all(line.startswith(f"  {' '.join((prog, *path))} ") for line in examples), examples
    if prog != "python cli.py":
        assert "python cli.py" not in shown  # the help text's own mentions are rewritten too


def test_library_messages_name_the_command_typed(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["data", "synth", "--data-root", str(tmp_path),
                                      "--sizes", "4", "0", "2", "--image-size", "32"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.main, ["train", "--data", str(tmp_path / "synthetic"),
                                      "--models-dir", str(tmp_path / "models")],
                           prog_name="small-data")
    assert result.exit_code == 2
    assert "re-run `small-data data prepare`" in result.stderr, result.stderr


CHECK = """
import json, sys, time
started = time.perf_counter()
import cli
imported = time.perf_counter() - started
paths = json.loads(sys.argv[1])
slowest = 0.0
for path in paths:
    started = time.perf_counter()
    try:
        cli.main([*path, "--help"], prog_name="small-data", standalone_mode=False)
    except SystemExit:
        pass
    slowest = max(slowest, time.perf_counter() - started)
print(json.dumps({"import": imported, "slowest": slowest,
                  "loaded": [m for m in ("tensorflow", "keras") if m in sys.modules]}))
"""


def test_help_of_every_command_loads_no_tensorflow_and_answers_at_once():
    paths = [[], *map(list, COMMANDS)]
    done = subprocess.run([sys.executable, "-c", CHECK, json.dumps(paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], done.stdout
    assert report["import"] < 1.0 and report["slowest"] < 1.0, report


@pytest.mark.parametrize("command", [["cli.py"], ["-m", "pipeline"]], ids=" ".join)
def test_help_in_a_real_process(command):
    """``python cli.py extract --help`` and ``python -m pipeline run --help``, as typed."""
    for args, usage in ((["extract", "--help"], "extract"), (["run", "--help"], "run")):
        done = subprocess.run([sys.executable, *command, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        prog = "python cli.py" if command == ["cli.py"] else "python -m pipeline"
        assert done.stdout.startswith(f"Usage: {prog} {usage} [OPTIONS]")
        assert f"\n  {prog} {usage}" in done.stdout and "\nAugmentation:\n" in done.stdout
