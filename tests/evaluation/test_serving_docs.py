"""The guide's "Serving a raw JPEG" runs as written: its export commands, then each snippet.

The commands are taken from the guide's ``bash`` block (``models/<run>`` becomes a real run),
the snippets from its ``python`` blocks, run in a fresh process in a folder holding the
exports and a ``photo.jpg``; each must print the class ``predict`` gives that photo.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
HEADING = "### Serving a raw JPEG"


def serving_section() -> str:
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    start = guide.index(HEADING + "\n")
    end = re.search(r"^#{2,3} ", guide[start + len(HEADING):], flags=re.MULTILINE)
    return guide[start: start + len(HEADING) + end.start()] if end else guide[start:]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", serving_section(),
                      flags=re.MULTILINE | re.DOTALL)


def test_each_snippet_is_five_lines():
    snippets = blocks("python")
    assert len(snippets) == 2 and [len(code.splitlines()) for code in snippets] == [5, 5]


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory) -> Path:
    """A folder where the guide's export commands ran, with a 300x200 ``photo.jpg``."""
    from cli import main

    folder = tmp_path_factory.mktemp("serving")
    (command_block,) = blocks("bash")
    for line in command_block.splitlines():
        words = shlex.split(line, comments=True)
        assert words[:3] == ["python", "cli.py", "export"], line
        words = [str(tiny_run.path) if word == "models/<run>" else word for word in words[2:]]
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            result = CliRunner().invoke(main, words)
        finally:
            os.chdir(cwd)
        assert result.exit_code == 0, result.output + repr(result.exception)
    rng = np.random.default_rng(9)
    pixels = np.clip(rng.normal(120, 60, (200, 300, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(folder / "photo.jpg", format="JPEG", quality=90)
    return folder


@pytest.mark.parametrize("index", [0, 1], ids=["savedmodel", "tflite"])
def test_the_snippet_prints_predicts_class(index, served, tiny_run):
    from pipeline.evaluation.predict import predict_paths

    code = blocks("python")[index]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], cwd=served, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = predict_paths(tiny_run.path, [served / "photo.jpg"])
    assert done.stdout.strip().splitlines()[-1] == row.label
