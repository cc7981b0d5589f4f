"""``data prepare`` stopped or killed at each step: the true outcome is reported, and what a
dead run left (hidden ``.partial-``, ``.old-`` and ``.owner-`` entries) is cleared by the next
run, never what a live run is still building.

Each fault runs the real command in a process of its own (``prepare_driver.py``), which sends
itself a real signal at the step named; the next run is an ordinary ``prepare_dataset``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.data.manifest import read_manifest, verify_dataset
from pipeline.data.prepare import PrepareConfig, prepare_dataset

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("prepare_driver.py")


def config(source: Path, data_root: Path, **overrides) -> PrepareConfig:
    settings = dict(source=source, data_root=data_root, name="small", train=4, validation=2,
                    test=2)
    settings.update(overrides)
    return PrepareConfig(**settings)


def driver_args(fault: str, source: Path, data_root: Path, *flags: str) -> list[str]:
    return [sys.executable, str(DRIVER), fault, "--source", str(source), "--data-root",
            str(data_root), "--name", "small", "--validation", "2", "--test", "2", *flags]


def run_driver(fault: str, source: Path, data_root: Path, *flags: str):
    return subprocess.run(driver_args(fault, source, data_root, *flags), capture_output=True,
                          text=True, timeout=120, check=False, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def hidden(data_root: Path) -> list[str]:
    return sorted(p.name for p in data_root.iterdir() if p.name.startswith("."))


@pytest.fixture
def replaced(tmp_path, kaggle_source):
    """A source of 10 photos per class and a dataset ``small`` of it (4 training per class)."""
    source, data_root = kaggle_source(per_class=10), tmp_path / "data"
    prepare_dataset(config(source, data_root), progress=False)
    return source, data_root


def _reports_the_new_dataset_prepared(done, data_root, says: str) -> None:
    """A stop that came once the new dataset (3 training photos per class) was in place:
    exit 0, "prepared" with ``says``, and the dataset complete on disk."""
    assert done.returncode == 0, done.stderr
    assert "interrupted" not in done.stderr and "terminated" not in done.stderr
    assert f"prepared {data_root / 'small'}" in done.stdout
    assert says in done.stdout
    assert read_manifest(data_root / "small")["requested"]["train"] == 3
    assert verify_dataset(data_root / "small", full=True).files == 14


@pytest.mark.parametrize("stop", ["int", "term"])
def test_a_stop_while_deleting_the_replaced_dataset_reports_it_prepared(replaced, stop):
    source, data_root = replaced
    done = run_driver(f"{stop}-while-deleting-old", source, data_root, "--train", "3", "--force")

    _reports_the_new_dataset_prepared(done, data_root,
                                      "the next `data prepare` deletes what is left")
    assert any(".small.old-" in name for name in hidden(data_root))  # half deleted, owned

    later = prepare_dataset(config(source, data_root, name="other"), progress=False)
    assert hidden(data_root) == []
    assert any("removed" in note and ".small.old-" in note for note in later.notes)
    assert verify_dataset(data_root / "small", full=True).files == 14


@pytest.mark.parametrize("stop", ["int", "term"])
def test_a_stop_after_the_dataset_is_in_place_reports_it_prepared(replaced, stop):
    """The stop lands after placing and deleting, before ``prepare_dataset`` returns."""
    source, data_root = replaced
    done = run_driver(f"{stop}-after-placing", source, data_root, "--train", "3", "--force")

    _reports_the_new_dataset_prepared(done, data_root,
                                      "once the new dataset was in place; it is complete")
    assert hidden(data_root) == []  # nothing left for a later run to clear


def test_run_stopped_once_its_dataset_is_in_place_says_so_and_trains_nothing(tmp_path,
                                                                             kaggle_source):
    source, data_root, models = kaggle_source(per_class=10), tmp_path / "data", tmp_path / "m"
    done = subprocess.run(
        [sys.executable, str(DRIVER), "int-after-placing", "run", "--source", str(source),
         "--data", str(data_root / "small"), "--models-dir", str(models), "--run-name", "ch",
         "--split-sizes", "4", "2", "2", "--steps", "scratch", "--image-size", "48"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})

    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "interrupted"
    assert f"prepared {data_root / 'small'}" in done.stdout
    assert "once the new dataset was in place; it is complete" in done.stdout
    assert verify_dataset(data_root / "small", full=True).files == 16
    assert not (models / "ch").exists()  # no step was started


def test_a_killed_build_is_removed_by_the_next_run(tmp_path, kaggle_source):
    source, data_root = kaggle_source(per_class=10), tmp_path / "data"
    done = run_driver("kill-while-writing", source, data_root, "--train", "4")
    assert done.returncode == -signal.SIGKILL
    assert any(name.startswith(".small.partial-") for name in hidden(data_root))

    result = prepare_dataset(config(source, data_root), progress=False)
    assert sorted(p.name for p in data_root.iterdir()) == ["small"]
    assert any(".small.partial-" in note for note in result.notes)
    assert "removed" in result.summary()


def test_killed_between_its_two_renames_the_old_dataset_is_put_back(replaced):
    source, data_root = replaced
    done = run_driver("kill-between-renames", source, data_root, "--train", "3", "--force")
    assert done.returncode == -signal.SIGKILL
    assert not (data_root / "small").exists()  # moved aside, its replacement not yet in

    prepare_dataset(config(source, data_root, name="other"), progress=False)
    assert sorted(p.name for p in data_root.iterdir()) == ["other", "small"]
    assert read_manifest(data_root / "small")["requested"]["train"] == 4
    assert verify_dataset(data_root / "small", full=True).files == 16


def test_killed_before_deleting_the_old_dataset_the_next_run_deletes_it(replaced):
    source, data_root = replaced
    done = run_driver("kill-before-deleting-old", source, data_root, "--train", "3", "--force")
    assert done.returncode == -signal.SIGKILL
    assert read_manifest(data_root / "small")["requested"]["train"] == 3

    prepare_dataset(config(source, data_root, name="other"), progress=False)
    assert sorted(p.name for p in data_root.iterdir()) == ["other", "small"]
    assert verify_dataset(data_root / "small", full=True).files == 14


def test_a_stop_while_writing_says_interrupted_and_leaves_the_old_dataset(replaced):
    source, data_root = replaced
    done = run_driver("int-while-writing", source, data_root, "--train", "3", "--force")
    assert done.returncode == 130 and "interrupted" in done.stderr
    assert hidden(data_root) == []
    assert read_manifest(data_root / "small")["requested"]["train"] == 4


def _wait_until_stopped(process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()[0]
        if state == "T":
            return
        if process.poll() is not None:
            pytest.fail(f"the paused run ended instead: {process.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("the run never reached its pause")


def test_a_live_build_is_never_touched_and_cleared_once_its_process_ended(tmp_path,
                                                                          kaggle_source):
    source, data_root = kaggle_source(per_class=10), tmp_path / "data"
    paused = subprocess.Popen(driver_args("pause-while-writing", source, data_root, "--train",
                                          "4"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_until_stopped(paused)
        live = hidden(data_root)
        assert any(name.startswith(".small.partial-") for name in live)
        prepare_dataset(config(source, data_root, name="other"), progress=False)
        assert hidden(data_root) == live  # alive (stopped, not dead): its work is its own
    finally:
        paused.kill()
        paused.wait(timeout=60)
        paused.stdout.close()
        paused.stderr.close()
    prepare_dataset(config(source, data_root, name="third"), progress=False)
    assert hidden(data_root) == []


def test_leftovers_of_another_host_or_without_an_owner_are_left_alone_and_named(
    tmp_path, kaggle_source
):
    source, data_root = kaggle_source(per_class=10), tmp_path / "data"
    other_host = data_root / ".x.partial-0123abcd"
    other_host.mkdir(parents=True)
    (data_root / ".x.owner-0123abcd").write_text("another-host.example:12:boot-1\n")
    ownerless = data_root / ".y.old-89abcdef"
    ownerless.mkdir()
    (ownerless / "photo.jpg").write_bytes(b"someone's")

    result = prepare_dataset(config(source, data_root), progress=False)
    assert hidden(data_root) == [".x.owner-0123abcd", ".x.partial-0123abcd", ".y.old-89abcdef"]
    assert (ownerless / "photo.jpg").read_bytes() == b"someone's"
    summary = result.summary()
    assert f"left alone: {ownerless}" in summary and "no owner record" in summary
    assert ".x.partial-" not in summary  # another host's live work is not ours to mention


def test_two_builds_of_one_dataset_the_later_to_finish_is_refused_and_removes_nothing(
    tmp_path, kaggle_source
):
    source, data_root = kaggle_source(per_class=10), tmp_path / "data"
    paused = subprocess.Popen(driver_args("pause-while-writing", source, data_root, "--train",
                                          "3"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_until_stopped(paused)
        prepare_dataset(config(source, data_root), progress=False)  # finishes first
        paused.send_signal(signal.SIGCONT)
        _, stderr = paused.communicate(timeout=120)
    finally:
        paused.kill()
        paused.wait(timeout=60)
    assert paused.returncode == 2
    last = stderr.strip().splitlines()[-1]  # after its progress lines
    assert "Traceback" not in stderr and last.startswith("error: ")
    assert "another process wrote a dataset there while this one was being prepared" in last
    assert read_manifest(data_root / "small")["requested"]["train"] == 4  # the first's, whole
    assert verify_dataset(data_root / "small", full=True).files == 16
    assert hidden(data_root) == []  # the refused build removed its own folder, nothing else
