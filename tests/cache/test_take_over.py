"""Features or views whose owner looks alive but is known dead (its pid another live process's,
which the start stamp cannot tell apart): refused, naming ``take_over``; taken over when the
user says so, continuing from the owner's last complete part and keeping its finished views.

The killed computation is real (a child process SIGKILLed mid-way); its owner file is then
pointed at a live process, as a pid reused after a reboot would look.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.cache import parts as feature_parts
from pipeline.cache.features import FeatureCache
from pipeline.cache.views import ViewCache, ViewsKey
from pipeline.errors import PipelineError
from pipeline.system import processes
from tests.cache.test_parts import COUNT, KEY, ROOT, SHAPE, VALUES, child, rest_of

OWNER = ("import json; from pipeline.system import processes; host, pid = processes.current(); "
         "print(json.dumps({'pid': pid, 'host': host, 'stamp': processes.stamp()}), "
         "flush=True); input()")


@pytest.fixture
def live_owner():
    """The owner record of a live process other than this one (it ends with the test)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", OWNER], cwd=ROOT, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield json.loads(process.stdout.readline())
    process.communicate("")


def _write(cache: FeatureCache, starts: list[int]):
    return cache.write(KEY, count=COUNT, feature_shape=SHAPE, label_shape=(1,),
                       label_dtype="float32", fill=rest_of(starts))


def test_features_of_a_live_looking_owner_are_refused_then_taken_over(tmp_path, live_owner):
    assert child(tmp_path, 700).returncode == -9  # killed after one complete part (512 rows)
    cache = FeatureCache(tmp_path)
    work = feature_parts.work_folder(cache.folder(KEY))
    (work / feature_parts.OWNER_FILE).write_text(json.dumps(live_owner))
    kept = (work / feature_parts.PROGRESS_FILE).read_bytes()

    starts: list[int] = []
    with pytest.raises(PipelineError) as refused:
        _write(cache, starts)
    message = str(refused.value)
    assert f"process {live_owner['pid']} on" in message and "`take_over`" in message
    assert starts == [] and (work / feature_parts.PROGRESS_FILE).read_bytes() == kept

    with processes.taking_over():
        made = _write(cache, starts)
    assert starts == [512]  # continued from the owner's last complete part
    np.testing.assert_array_equal(np.asarray(made.features), VALUES)
    assert not work.exists()  # published


def test_views_of_a_live_looking_owner_are_taken_over_keeping_finished_views(tmp_path,
                                                                             live_owner):
    cache = ViewCache(tmp_path)
    key = ViewsKey.make("features-digest", "conv", {"flip": True}, seed=0)
    labels = np.zeros((4, 1), "float32")
    calls: list[int] = []

    def compute(view: int, out: np.ndarray) -> None:
        calls.append(view)
        out[...] = view

    cache.ensure(key, 1, labels=labels, feature_shape=(2,), compute=compute, verbose=0)
    folder = cache.folder(key)
    (folder / feature_parts.OWNER_FILE).write_text(json.dumps(live_owner))
    with pytest.raises(PipelineError, match=r"computing these augmented views now.*`take_over`"):
        cache.ensure(key, 2, labels=labels, feature_shape=(2,), compute=compute, verbose=0)
    with processes.taking_over():
        views = cache.ensure(key, 2, labels=labels, feature_shape=(2,), compute=compute,
                             verbose=0)
    assert calls == [0, 1]  # view 0, finished before, kept and not computed again
    assert [float(np.asarray(array)[0, 0]) for array in views.views] == [0.0, 1.0]
    assert not (folder / feature_parts.OWNER_FILE).exists()
