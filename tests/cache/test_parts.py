"""Computing features survives a crash (continues from the last part), a full disk (one line,
nothing left) and cleans up what crashed runs of the earlier format left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.cache import parts as feature_parts
from pipeline.cache.features import FeatureCache, FeatureKey
from pipeline.errors import PipelineError
from tests.data.conftest import small_fs  # noqa: F401 - a real tiny tmpfs, shared fixture

ROOT = Path(__file__).resolve().parents[2]
KEY = FeatureKey(base="vgg16", layer="block4_pool", weights="w" * 64, image_size=48,
                 preprocessing="caffe", dataset="d" * 64, split="train")
COUNT, SHAPE = 1200, (4, 4, 2)  # 128 bytes a row: parts of 512 rows
VALUES = np.arange(COUNT * 32, dtype="float32").reshape(COUNT, *SHAPE)

# A child process writing KEY's entry batch by batch (50 rows) into the cache at argv[1];
# it kills itself (SIGKILL, no clean-up of any kind) after argv[2] rows if given.
CHILD = textwrap.dedent(f"""
    import os, signal, sys
    import numpy as np
    from pipeline.errors import PipelineError
    from pipeline.cache.features import FeatureCache, FeatureKey
    key = FeatureKey(**{KEY.__dict__!r})
    values = np.arange({COUNT} * 32, dtype="float32").reshape({COUNT}, *{SHAPE!r})
    die_after = int(sys.argv[2]) if len(sys.argv) > 2 else None
    def fill(writer):
        for first in range(writer.start, {COUNT}, 50):
            writer.append(values[first:first + 50], np.zeros((50, 1), "float32"))
            if die_after and writer.rows >= die_after:
                os.kill(os.getpid(), signal.SIGKILL)
    try:
        FeatureCache(sys.argv[1]).write(key, count={COUNT}, feature_shape={SHAPE!r},
                                        label_shape=(1,), label_dtype="float32", fill=fill)
    except PipelineError as error:
        print(f"error: {{error}}", file=sys.stderr)
        sys.exit(2)
""")


def child(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120, check=False)


def rest_of(starts: list[int]):
    def fill(writer):
        starts.append(writer.start)
        for first in range(writer.start, COUNT, 100):
            rows = VALUES[first:first + 100]
            writer.append(rows, np.zeros((len(rows), 1), "float32"))
    return fill


def test_a_killed_computation_is_continued_from_its_last_complete_part(tmp_path):
    done = child(tmp_path, 700)
    assert done.returncode == -9, done.stderr
    cache = FeatureCache(tmp_path)
    assert cache.load(KEY) is None, "nothing is published before every row is in"
    starts: list[int] = []
    made = cache.write(KEY, count=COUNT, feature_shape=SHAPE, label_shape=(1,),
                       label_dtype="float32", fill=rest_of(starts))
    assert starts == [512]  # the first part survived the kill; rows 512..699 are redone
    np.testing.assert_array_equal(np.asarray(made.features), VALUES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY.folder_name()]
    assert sorted(p.name for p in made.path.iterdir()) == [
        "features.npy", "labels.npy", "metadata.json", "verified.json"]


def test_a_full_disk_is_one_line_and_leaves_nothing(small_fs):  # noqa: F811
    disk = small_fs("64k")  # the entry needs 150 KB
    done = child(disk)
    assert done.returncode == 2, done.stderr  # the memory-mapped writer died of SIGBUS (-7)
    lines = done.stderr.strip().splitlines()  # TensorFlow's start-up lines, then ours
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == lines[-1:] and "Traceback" not in done.stderr
    assert errors[0].startswith(f"error: {disk}: the disk is full")
    assert "`features_dir`" in errors[0]
    assert list(disk.iterdir()) == [], "no hidden folder keeps the disk full"


def test_a_live_computation_of_the_same_entry_is_not_joined(tmp_path):
    work = feature_parts.work_folder(FeatureCache(tmp_path).folder(KEY))
    with feature_parts.claimed(work), pytest.raises(PipelineError, match="computing these"):
        FeatureCache(tmp_path).write(KEY, count=COUNT, feature_shape=SHAPE, label_shape=(1,),
                                     label_dtype="float32", fill=rest_of([]))


def make_left_over(root: Path, name: str, age: float, owner_pid: int | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "features.npy").write_bytes(b"x" * 1000)
    if owner_pid is not None:
        (folder / feature_parts.OWNER_FILE).write_text(json.dumps(
            {"pid": owner_pid, "host": os.uname().nodename}))
    then = time.time() - age
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (then, then))
    return folder


def test_left_overs_of_crashed_runs_are_removed_and_nothing_else(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    entry = "vgg16-block4_pool-150px-train-0123456789abcdef"
    hour, day = 3600, 24 * 3600
    gone = [make_left_over(tmp_path, f".{entry}-k2j_x9aq", 2 * hour),  # old format, old
            make_left_over(tmp_path, f".{entry}.parts", 4 * day, dead_pid)]
    kept = [make_left_over(tmp_path, f".{entry.replace('train', 'test')}-abcdefgh", 60),
            make_left_over(tmp_path, f".{entry.replace('150', '160')}.parts", 4 * day,
                           os.getpid()),  # its owner is alive
            make_left_over(tmp_path, f".{entry.replace('150', '170')}.parts", hour,
                           dead_pid),  # recent: a rerun will continue it
            make_left_over(tmp_path, ".not-ours-abcdefgh", 9 * day)]
    FeatureCache(tmp_path).write(KEY, count=COUNT, feature_shape=SHAPE, label_shape=(1,),
                                 label_dtype="float32", fill=rest_of([]))
    assert not any(path.exists() for path in gone)
    assert all(path.exists() for path in kept)
    err = capsys.readouterr().err
    assert all(f"removed left-over partial features {path}" in err for path in gone)
