"""Two commands given one new ``run_name`` at once: the second is told a process is making it
(not that the folder "is not a run folder"); a maker that died leaves the name usable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.runs.folder import CREATOR, Run, RunRecord

ROOT = Path(__file__).resolve().parents[2]
MAKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.runs.folder import Run
    run = Run.create(Path(sys.argv[1]), "extract", "shared")
    (run.path / "logs").mkdir()  # something in it, as a workflow makes before its record
    print("made", flush=True)
    sys.stdin.read()
""")


def _maker(models: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    maker = subprocess.Popen([sys.executable, "-c", MAKER, str(models)], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert maker.stdout.readline().strip() == "made"
    return maker


def test_a_run_being_made_by_a_live_process_is_named_as_such(tmp_path):
    maker = _maker(tmp_path)
    try:
        expected = rf"already exists, being made by process .*:{maker.pid}"
        with pytest.raises(PipelineError, match=expected):
            Run.create(tmp_path, "extract", "shared")
        assert (tmp_path / "shared" / "logs").is_dir()  # the maker's folder is left alone
    finally:
        maker.communicate("")


def test_a_maker_that_died_before_its_record_leaves_the_name_usable(tmp_path):
    maker = _maker(tmp_path)
    maker.kill()
    maker.communicate()
    run = Run.create(tmp_path, "extract", "shared")
    run.write_record(RunRecord(kind="extract", data_dir="d", class_names=["a", "b"],
                               image_size=48))
    assert not (run.path / CREATOR).exists()
    assert run.record().process.split(":")[1] == str(os.getpid())


def test_a_folder_of_the_users_is_still_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(PipelineError, match="already exists and is not a run folder"):
        Run.create(tmp_path, "extract", "mine")
