"""Two processes on one cache entry: exactly one computes, the other refuses, and nobody's work
is removed. A full disk while writing views is one line, not a bus error. Real processes, real
files, a real tiny file system."""

from __future__ import annotations

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
from pipeline.cache.views import ViewCache, ViewsKey
from pipeline.errors import PipelineError
from pipeline.system import processes
from tests.data.conftest import small_fs  # noqa: F401 - a real tiny tmpfs, shared fixture

ROOT = Path(__file__).resolve().parents[2]
KEY = FeatureKey(base="vgg16", layer="block4_pool", weights="w" * 64, image_size=48,
                 preprocessing="caffe", dataset="d" * 64, split="train")
COUNT, SHAPE = 200, (4, 4, 2)

# A child that claims a work folder (argv[1]), writes a marker file in it, says "claimed",
# then holds the claim until its standard input closes.
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.cache.parts import claimed
    with claimed(Path(sys.argv[1])) as folder:
        (folder / "work-in-progress.npy").write_bytes(b"mine")
        print("claimed", flush=True)
        sys.stdin.read()
""")

# A child that writes KEY's entry into the cache at argv[1], slowly (so two overlap), and
# prints "computed" or the one-line error.
WRITER = textwrap.dedent(f"""
    import sys, time
    import numpy as np
    from pipeline.errors import PipelineError
    from pipeline.cache.features import FeatureCache, FeatureKey
    key = FeatureKey(**{KEY.__dict__!r})
    def fill(writer):
        for first in range(writer.start, {COUNT}, 50):
            time.sleep(0.3)
            writer.append(np.full((50, *{SHAPE!r}), first, "float32"), np.zeros((50, 1), "float32"))
    try:
        FeatureCache(sys.argv[1]).write(key, count={COUNT}, feature_shape={SHAPE!r},
                                        label_shape=(1,), label_dtype="float32", fill=fill)
        print("computed")
    except PipelineError as error:
        print(f"error: {{error}}")
        sys.exit(2)
""")


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def _fill(writer):
    writer.append(np.ones((COUNT, *SHAPE), "float32"), np.zeros((COUNT, 1), "float32"))


def _hold(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT,
                              env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "claimed"
    return holder


def test_a_refused_second_computation_leaves_the_first_ones_work(tmp_path):
    cache = FeatureCache(tmp_path)
    work = feature_parts.work_folder(cache.folder(KEY))
    holder = _hold(work)
    try:
        with pytest.raises(PipelineError, match="is computing these features now; wait"):
            cache.write(KEY, count=COUNT, feature_shape=SHAPE, label_shape=(1,),
                        label_dtype="float32", fill=_fill)
        assert (work / "work-in-progress.npy").read_bytes() == b"mine"
        assert (work / feature_parts.OWNER_FILE).is_file()
    finally:
        holder.communicate("")
    # Once the holder is gone, the same call computes.
    made = cache.write(KEY, count=COUNT, feature_shape=SHAPE, label_shape=(1,),
                       label_dtype="float32", fill=_fill)
    assert made.count == COUNT


def test_two_computations_started_together_one_computes_one_refuses(tmp_path):
    runs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT,
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outcomes = sorted(run.communicate(timeout=120)[0].strip() for run in runs)
    assert outcomes[0] == "computed", outcomes
    assert "is computing these features now" in outcomes[1], outcomes
    cached = FeatureCache(tmp_path).load(KEY, strict=True)
    assert cached.count == COUNT
    assert sorted(np.unique(np.asarray(cached.features))) == [0, 50, 100, 150]


def test_views_being_computed_by_a_live_process_are_refused_and_kept(tmp_path):
    cache = ViewCache(tmp_path)
    key = ViewsKey.make("features-digest", "conv", {"rotation": 40}, seed=7)
    folder = cache.folder(key)
    holder = _hold(folder)
    try:
        with pytest.raises(PipelineError, match="is computing these augmented views now"):
            cache.ensure(key, 2, labels=np.zeros((4, 1), "float32"), feature_shape=(2, 2, 1),
                         compute=lambda view, out: out.fill(view), verbose=0)
        assert (folder / "work-in-progress.npy").read_bytes() == b"mine"
    finally:
        holder.communicate("")


def test_views_the_disk_cannot_hold_are_refused_before_any_work(tmp_path):
    cache = ViewCache(tmp_path)
    key = ViewsKey.make("features-digest", "conv", {"rotation": 40}, seed=7)
    calls = []
    with pytest.raises(PipelineError, match=r"100000 augmented views of 1000 images need .* GiB"):
        cache.ensure(key, 100_000, labels=np.zeros((1000, 1), "float32"),
                     feature_shape=(64, 64, 64), compute=lambda view, out: calls.append(view),
                     verbose=0)
    assert calls == []


def test_a_full_disk_while_writing_a_view_is_one_line_and_keeps_earlier_views(small_fs):  # noqa: F811
    disk = small_fs("192k")
    cache = ViewCache(disk)
    key = ViewsKey.make("features-digest", "conv", {"rotation": 40}, seed=7)
    labels = np.zeros((100, 1), "float32")
    # 100 x 16 x 16 floats = 100 KiB a view: the first fits, the second does not. The free-space
    # estimate is made for all views at once, so ask one at a time, as a growing run would.
    cache.ensure(key, 1, labels=labels, feature_shape=(16, 16, 1),
                 compute=lambda view, out: out.fill(1.0), verbose=0)
    started = time.monotonic()
    with pytest.raises(PipelineError, match="disk"):
        cache.ensure(key, 2, labels=labels, feature_shape=(16, 16, 1),
                     compute=lambda view, out: out.fill(2.0), verbose=0)
    assert time.monotonic() - started < 30
    again = cache.ensure(key, 1, labels=labels, feature_shape=(16, 16, 1),
                         compute=lambda view, out: pytest.fail("view 0 was kept"), verbose=0)
    assert float(np.asarray(again.views[0]).mean()) == 1.0


def test_a_live_pid_of_another_process_does_not_keep_a_dead_owner_alive():
    """After a reboot or in a new container the recorded pid may be reused: the stamp (boot and
    start time) tells the processes apart."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host, _ = processes.current()
        own = processes.stamp(sleeper.pid)
        if own is None:
            pytest.skip("this system does not tell process start times (/proc)")
        assert not processes.has_ended(host, sleeper.pid, own)
        assert processes.has_ended(host, sleeper.pid, own + "0")  # same pid, another process
        assert not processes.described_has_ended(f"{host}:{sleeper.pid}:{own}")
        assert processes.described_has_ended(f"{host}:{sleeper.pid}:{own}0")
        assert not processes.described_has_ended(f"{host}:{sleeper.pid}")  # an older record
    finally:
        sleeper.kill()
        sleeper.wait()
