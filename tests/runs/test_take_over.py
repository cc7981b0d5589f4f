"""A run whose recorded process looks alive but is dead (its pid another's after a reboot, in a
container): refused by default, naming the way out; taken over and continued when the user
says so (``take_over``, ``--take-over``), keeping what it finished.

The "dead" owner is stood in for by a live child process whose description (host, pid, start
stamp) is written into the record: to this process it looks exactly like a pid reused by a
live process that the stamp cannot tell apart.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import CHAPTER_RECORD, ChapterRecord, StepRecord, read_record
from pipeline.runs.folder import CREATOR, RUNNING, Run, RunRecord
from pipeline.system import atomic, processes

ROOT = Path(__file__).resolve().parents[2]
DESCRIBE = ("from pipeline.system import processes; print(processes.describe(), flush=True); "
            "input()")


@pytest.fixture
def live_owner():
    """``describe()`` of a live process other than this one (it ends with the test)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", DESCRIBE], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    described = child.stdout.readline().strip()
    assert described.split(":")[1] == str(child.pid)
    yield described
    child.communicate("")


def _held_run(models: Path, owner: str) -> Path:
    """A run folder recorded as being trained by ``owner``, with a finished file in it."""
    folder = models / "held"
    folder.mkdir(parents=True)
    record = RunRecord(kind="extract", data_dir="d", class_names=["a", "b"], image_size=48,
                       status=RUNNING, process=owner, versions={"python": "3"})
    atomic.write_json(folder / "config.json", record.to_dict())
    (folder / "best.keras").write_bytes(b"its best model so far")
    return folder


def test_a_run_held_by_a_live_looking_process_is_refused_naming_the_way_out(tmp_path,
                                                                            live_owner):
    folder = _held_run(tmp_path, live_owner)
    with pytest.raises(PipelineError) as refused:
        Run.create(tmp_path, "extract", "held")
    message = str(refused.value)
    assert "is being trained right now" in message and live_owner in message
    assert "is not running any more" in message and "`take_over`" in message
    assert (folder / "best.keras").read_bytes() == b"its best model so far"


def test_taking_over_continues_the_run_and_keeps_its_files(tmp_path, live_owner):
    folder = _held_run(tmp_path, live_owner)
    with processes.taking_over():
        run = Run.create(tmp_path, "extract", "held")
    assert not processes.is_taking_over()  # only within the block
    assert run.resuming and run.path == folder
    assert (folder / "best.keras").read_bytes() == b"its best model so far"
    written = run.write_record(dataclasses.replace(run.record(), process=None))
    assert written.process == processes.describe() and len(written.resumed) == 1


def test_a_maker_marker_of_a_live_looking_process_is_taken_over_only_when_asked(tmp_path,
                                                                                 live_owner):
    folder = tmp_path / "made"
    folder.mkdir()
    (folder / CREATOR).write_text(live_owner)
    (folder / "logs").mkdir()
    with pytest.raises(PipelineError, match=r"being made by process .*`take_over`"):
        Run.create(tmp_path, "extract", "made")
    with processes.taking_over():
        run = Run.create(tmp_path, "extract", "made")
    assert (folder / CREATOR).read_text() == processes.describe()
    assert (run.path / "logs").is_dir()


def test_a_chapter_folder_run_by_a_live_process_is_left_alone(synthetic_dataset, tmp_path,
                                                              live_owner):
    """A second `run` on the same folder would discard the first one's step as half made."""
    from pipeline.workflows.chapter.plan import ChapterConfig
    from pipeline.workflows.chapter.workflow import run_chapter

    parent = tmp_path / "ch"
    (parent / "extract").mkdir(parents=True)
    (parent / "extract" / "history.json").write_text("{}")  # the other's step, training
    record = ChapterRecord(data_dir=str(synthetic_dataset), plan={}, config={},
                           steps={"extract": StepRecord(status="running")}, process=live_owner)
    atomic.write_json(parent / CHAPTER_RECORD, record.to_dict())
    config = ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path, run_name="ch",
                           steps=("evaluate",), report=False)
    with pytest.raises(PipelineError, match=r"`run` is at work in it right now .*`take_over`"):
        run_chapter(config, verbose=0)
    assert (parent / "extract" / "history.json").is_file()
    assert read_record(parent).process == live_owner  # not rewritten

    run_chapter(dataclasses.replace(config, take_over=True), verbose=0)
    taken = read_record(parent)
    assert taken.status == "completed" and taken.process == processes.describe()
    assert (parent / "extract" / "history.json").is_file()  # not a planned step: untouched


def _train(data: Path, models: Path, *extra: str):
    return CliRunner().invoke(main, ["train", "--data", str(data), "--models-dir", str(models),
                                     "--run-name", "mine", "--image-size", "48",
                                     "--batch-size", "8", *extra])


def test_train_take_over_continues_a_run_whose_pid_was_reused(synthetic_dataset, tmp_path,
                                                              live_owner):
    first = _train(synthetic_dataset, tmp_path, "--epochs", "1")
    assert first.exit_code == 0, first.output
    folder = tmp_path / "mine"
    # As a run killed after its first epoch leaves it: running, its last state saved.
    shutil.copy(folder / "final.keras", folder / "last.keras")
    (folder / "final.keras").unlink()
    document = json.loads((folder / "config.json").read_text())
    document.update(status="running", process=live_owner, finished=None)
    (folder / "config.json").write_text(json.dumps(document))
    epoch_one = json.loads((folder / "history.json").read_text())

    refused = _train(synthetic_dataset, tmp_path, "--epochs", "2")
    assert refused.exit_code == 2
    assert "being trained right now" in refused.output and "give --take-over" in refused.output
    assert (folder / "last.keras").is_file()

    taken = _train(synthetic_dataset, tmp_path, "--epochs", "2", "--take-over")
    assert taken.exit_code == 0, taken.output + repr(taken.exception)
    assert not processes.is_taking_over()  # held for the command only
    record = Run.open(folder).record()
    assert record.status == "completed" and record.epochs_run == 2
    assert record.resumed and record.resumed[-1].endswith("from epoch 1 (running)")
    assert record.process == processes.describe()
    history = json.loads((folder / "history.json").read_text())
    assert {key: values[:1] for key, values in history.items()} == epoch_one  # kept
    assert all(len(values) == 2 for values in history.values())
