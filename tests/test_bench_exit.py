"""Benchmarks never pass silently: a missed target or a benchmark that cannot run exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", ["accuracy_report.py", "bench_extract.py", "bench_finetune.py",
                                    "heads_report.py", "bench_views.py"])
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


@pytest.mark.parametrize(("script", "options", "message"), [
    ("bench_netvlad.py", ["--batch", "0"], "argument --batch: 0 is below 1"),
    ("bench_netvlad.py", ["--size", "x"], "argument --size: 'x' is not a whole number"),
    ("bench_netvlad.py", ["--warmup", "0"], "argument --warmup: 0 is below 1"),
    ("bench_locally_connected.py", ["--kernel", "5", "--size", "3"],
     "--kernel 5 is larger than --size 3"),
])
def test_a_layer_benchmark_names_a_bad_size_in_one_line(script, options, message):
    result = subprocess.run([sys.executable, str(BENCH / script), *options],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(message)
    assert "Traceback" not in result.stderr
