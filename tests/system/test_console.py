"""A quiet console: TensorFlow's start-up lines stay off stderr unless asked for; errors pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.system.console import is_noise

REPO = Path(__file__).resolve().parents[2]
STARTUP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "cuInit")


@pytest.mark.parametrize(("line", "noise"), [
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
     True),
    (b"I0000 00:00:1795486773.019466   24769 port.cc:153] oneDNN custom operations are on.",
     True),
    (b"W0000 00:00:1795486773.1   24769 cudart_stub.cc:31] Could not find cuda drivers", True),
    (b"E0000 00:00:1795486776.660017   24769 cuda_platform.cc:52] failed call to cuInit: "
     b"INTERNAL: CUDA error", True),
    (b"To enable the following instructions: AVX2 FMA, in other operations, rebuild "
     b"TensorFlow with the appropriate compiler flags.", True),
    (b"E0000 00:00:1795486776.660017   24769 kernel.cc:12] OOM when allocating tensor", False),
    (b"F0000 00:00:1795486776.6 24769 check.cc:1] Check failed: ok", False),
    (b"Traceback (most recent call last):", False),
    (b"error: data/x: no such dataset", False),
])
def test_only_startup_lines_are_noise(line, noise):
    assert is_noise(line) is noise


def _stderr(*args: str) -> str:
    """stderr of a CLI command that loads TensorFlow (builds a model to count its layers)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "SMALL_DATA_VERBOSE")}
    completed = subprocess.run(
        [sys.executable, "cli.py", *args, "summary", "scratch", "--image-size", "64"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Total" in completed.stdout or "total" in completed.stdout
    return completed.stderr


def test_startup_lines_are_kept_off_the_console_by_default():
    stderr = _stderr()
    assert not [name for name in STARTUP_LINES if name in stderr], stderr


def test_verbose_brings_them_back():
    stderr = _stderr("--verbose")
    # Which lines TensorFlow prints depends on the processor (oneDNN's note only where it
    # enables oneDNN, e.g. not on this AMD machine): the absl line always, and one more.
    assert "absl::InitializeLog" in stderr, stderr
    assert [name for name in STARTUP_LINES[1:] if name in stderr], stderr


def test_a_real_error_still_reaches_the_console():
    completed = subprocess.run(
        [sys.executable, "cli.py", "evaluate", "no/such/run"], cwd=REPO,
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert completed.returncode == 2 and "no/such/run" in completed.stderr
