"""A run cut short by a real signal is marked, says so in its exit status, and continues.

``cli.py train`` runs in a real subprocess and is sent SIGTERM or SIGINT (Ctrl-C) once it
has finished a few epochs; then the same command (same ``--run-name``) picks it up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

import cli
from pipeline.models.saving import load_model
from pipeline.runs.folder import Run

REPO = Path(cli.__file__).resolve().parent
STEPS_PER_EPOCH = 4  # 32 training images (synthetic_dataset) in batches of 8


def _train_args(data: Path, models: Path, epochs: int, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--models-dir", str(models), "--image-size", "48",
            "--batch-size", "8", "--epochs", str(epochs), "--run-name", "long", *extra]


def _last_epoch(config: Path) -> int:
    try:
        return json.loads(config.read_text()).get("last_epoch") or 0
    except (OSError, ValueError):
        return 0


def _train_until_stopped(data: Path, models: Path, signum: int, epochs_first: int = 2):
    """Start training for many epochs, send ``signum`` after ``epochs_first``; (rc, stderr)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "cli.py", *_train_args(data, models, 500)], cwd=REPO,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    config, deadline = models / "long" / "config.json", time.monotonic() + 120
    while _last_epoch(config) < epochs_first:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training did not reach its epochs in time"
        time.sleep(0.1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode not in (130, 143):  # keep what it printed (test_swallowed_signals)
        stderr += (f"\n[stdout, end]\n{stdout[-3000:]}\n[config.json]\n"
                   f"{config.read_text() if config.is_file() else '(none)'}")
    return process.returncode, stderr


def test_sigterm_marks_the_run_interrupted_and_exits_143(synthetic_dataset, tmp_path):
    returncode, stderr = _train_until_stopped(synthetic_dataset, tmp_path, signal.SIGTERM)
    assert returncode == 143, stderr
    assert "Traceback" not in stderr and "the same command" in stderr
    record = Run.open(tmp_path / "long", warn=False).record()
    assert record.status == "interrupted" and record.stop_reason == "stopped by SIGTERM"
    assert record.epochs_run >= 2 and record.last_epoch >= 2

    # Every reader says so; finetune's source would refuse it (it is no extract run anyway).
    result = CliRunner().invoke(cli.main, ["plot", str(tmp_path / "long")])
    assert result.exit_code == 0
    assert f"warning: run {tmp_path / 'long'} did not complete: interrupted" in result.stderr


def test_ctrl_c_exits_130_and_the_same_command_continues_the_run(synthetic_dataset, tmp_path):
    returncode, stderr = _train_until_stopped(synthetic_dataset, tmp_path, signal.SIGINT)
    assert returncode == 130, stderr
    run = Run.open(tmp_path / "long", warn=False)
    assert run.record().stop_reason == "stopped by Ctrl-C"
    done = run.record().last_epoch
    before = run.read_history()
    stale = run.file(".best-0123abcd.keras")  # what a crash mid-write leaves behind
    stale.write_bytes(b"partial")

    changed = CliRunner().invoke(cli.main, _train_args(synthetic_dataset, tmp_path, done + 1,
                                                       "--lr", "0.5"))
    assert changed.exit_code == 2 and "--lr" in changed.stderr and "same" in changed.stderr

    result = CliRunner().invoke(cli.main, _train_args(synthetic_dataset, tmp_path, done + 1))
    assert result.exit_code == 0, result.output
    record = run.record()
    assert record.status == "completed" and record.epochs_run == done + 1
    assert len(record.resumed) == 1 and f"from epoch {done}" in record.resumed[0]
    after = run.read_history()
    assert after["loss"][:done] == before["loss"][:done] and len(after["loss"]) == done + 1
    assert not stale.exists() and not run.file("last.keras").exists()
    # The optimizer carried on: its step count covers every epoch, not only the last one (a
    # fresh optimizer would count one epoch's steps; Keras counts one more per epoch here).
    final = load_model(run.file("final.keras"), compile=True)
    assert int(final.optimizer.iterations) >= (done + 1) * STEPS_PER_EPOCH
