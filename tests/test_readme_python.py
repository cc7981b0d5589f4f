"""The README's "From Python" example runs as written (on the tiny dataset it generates)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## From Python"


def readme_python_block(readme: str) -> str:
    """The first fenced ``python`` block between the "From Python" heading and the next one."""
    start = readme.index(HEADING + "\n")
    following = re.search(r"^## ", readme[start + len(HEADING):], flags=re.MULTILINE)
    section = readme[start: start + len(HEADING) + following.start()] if following else (
        readme[start:])
    found = re.search(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert found, f"README.md: no ```python block under {HEADING!r}"
    return found.group(1)


def test_the_block_is_found_under_its_heading():
    readme = "# x\n## From Python\ntext\n```python\nprint(1)\n```\n## Next\n```python\nno\n```\n"
    assert readme_python_block(readme) == "print(1)\n"


def test_readme_from_python_runs_as_written(tmp_path):
    code = readme_python_block((ROOT / "README.md").read_text(encoding="utf-8"))
    script = tmp_path / "from_python.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"README example failed:\n{done.stdout}\n{done.stderr[-3000:]}"

    # It wrote its dataset and its run under the working directory, nowhere else.
    assert (tmp_path / "data" / "shapes" / "manifest.json").is_file()
    runs = [p for p in (tmp_path / "models").iterdir() if (p / "config.json").is_file()]
    assert len(runs) == 1, runs
    run = runs[0]
    assert json.loads((run / "config.json").read_text())["status"] == "completed"
    assert (run / "best.keras").is_file()
    metrics = json.loads((run / "evaluation-test" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["count"] == 16
    # The user's Keras callback ran: one row per epoch after the header.
    assert len((tmp_path / "shapes-log.csv").read_text().splitlines()) == 2
    # What it printed: the run's status, the accuracy, then one row per predicted photo.
    assert "completed" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("stripes.")]
    assert len(rows) == 8 and all(row.split()[1] in ("circles", "stripes") for row in rows)

    # Run again as a notebook cell would be: the dataset is replaced, the run is a new one.
    again = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len([p for p in (tmp_path / "models").iterdir() if p.is_dir()]) == 2
