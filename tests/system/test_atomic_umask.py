"""Files written atomically get the permissions a plain ``open()`` would give them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from pipeline.system import atomic


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask_like_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic.write_json(tmp_path / "config.json", {"a": 1})
        with atomic.atomic_path(tmp_path / "model.keras") as tmp:
            tmp.write_bytes(b"weights")
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("reference")
    finally:
        os.umask(old)
    for name in ("config.json", "model.keras", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_killed_writer_leaves_the_old_file_and_only_a_hidden_temporary(tmp_path):
    target = tmp_path / "history.json"
    target.write_text("old")
    script = (
        "import os, signal, sys\n"
        "from pipeline.system import atomic\n"
        "with atomic.atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], check=False,
                          cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == -9
    assert target.read_text() == "old"
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith(".history-")
    assert leftovers[0].endswith(".json")
