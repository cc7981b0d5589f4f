"""Benchmarks never pass silently: a missed target or a benchmark that cannot run exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", ["accuracy_report.py", "bench_extract.py", "bench_finetune.py",
                                    "heads_report.py"])
def test_without_its_dataset_a_benchmark_says_so_and_exits_2(script, tmp_path):
    result = subprocess.run([sys.executable, str(BENCH / script), "--data", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"cannot run: prepared dataset {tmp_path} not found")


def test_a_missed_target_is_exit_status_1():
    sys.path.insert(0, str(BENCH))
    try:
        from common import MISSED, exit_status, verdict
    finally:
        sys.path.remove(str(BENCH))
    assert exit_status(True, True) == 0
    assert exit_status(True, False) == MISSED == 1
    assert exit_status(float("nan") >= 0.95) == 1  # no test split: not met
    assert (verdict(True), verdict(False)) == ("met", "NOT met")
