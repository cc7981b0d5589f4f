"""Strategies: one device, mirrored replicas and a cluster of workers train and predict alike.

A strategy over several devices or processes must be set up when a process starts, so the
mirrored and multi-worker cases run ``tests/devices/distribute_worker.py`` in subprocesses (on
127.0.0.1, with ports picked at run time and every process killed at the end).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline.devices.distribute import (
    Distribution,
    is_chief,
    per_replica_batch,
    read_tf_config,
    resolve_strategy,
    worker_scratch_dir,
)
from pipeline.errors import PipelineError

WORKER = Path(__file__).with_name("distribute_worker.py")
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90  # two TensorFlow imports on two shared cores
STOP_BOUND_S = 60  # a surviving worker must give up within this after a peer is killed


def cluster_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


# -- the batch size is global ---------------------------------------------------------------

def test_a_global_batch_is_split_evenly_across_replicas():
    assert per_replica_batch(64, 4) == 16
    assert per_replica_batch(32, 1) == 32


def test_a_batch_that_does_not_split_is_refused_naming_the_field():
    with pytest.raises(PipelineError, match=r"`batch_size` 30 does not split across 4"):
        per_replica_batch(30, 4)
    with pytest.raises(PipelineError, match="multiple of 8"):
        per_replica_batch(4, 8)


# -- TF_CONFIG: who is the chief ------------------------------------------------------------

def test_without_tf_config_the_process_is_the_chief():
    assert read_tf_config({}) is None
    assert is_chief({})


def test_worker_zero_is_the_chief_unless_the_cluster_names_one():
    workers = {"worker": ["a:1", "b:2"]}

    def env(cluster, kind, index):
        return {"TF_CONFIG": json.dumps({"cluster": cluster,
                                         "task": {"type": kind, "index": index}})}

    assert is_chief(env(workers, "worker", 0))
    assert not is_chief(env(workers, "worker", 1))
    with_chief = {"chief": ["c:3"], **workers}
    assert is_chief(env(with_chief, "chief", 0))
    assert not is_chief(env(with_chief, "worker", 0))
    assert read_tf_config(env(with_chief, "worker", 1)).workers == 3


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs a "cluster" and a "task"'),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
     "must be a list of \"host:port\""),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "task type 'ps' is not in its cluster"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "task index 1 is out of range"),
])
def test_a_malformed_tf_config_is_one_clear_error(text, message):
    with pytest.raises(PipelineError, match=message):
        read_tf_config({"TF_CONFIG": text})


def test_multiworker_without_tf_config_names_the_variable(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(PipelineError, match="needs the TF_CONFIG environment variable"):
        resolve_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(PipelineError, match='TF_CONFIG needs a "cluster" and a "task"'):
        resolve_strategy("multiworker")


def test_an_unknown_strategy_lists_the_choices():
    with pytest.raises(PipelineError, match="`strategy` 'ring' is not one of auto, one"):
        resolve_strategy("ring")


def test_a_non_chief_writes_into_a_scratch_directory(tmp_path):
    alone = Distribution("default", 1, ("/cpu:0",), True, tf.distribute.get_strategy())
    assert alone.output_dir(tmp_path / "run") == tmp_path / "run"
    helper = Distribution("multiworker", 2, ("/cpu:0",), False, tf.distribute.get_strategy())
    scratch, another = helper.output_dir(tmp_path / "run"), worker_scratch_dir()
    try:
        assert scratch.is_dir() and tmp_path not in scratch.parents
        assert scratch != another  # a fresh one each time
    finally:
        shutil.rmtree(scratch)
        shutil.rmtree(another)


@pytest.mark.parametrize("text, detail", [
    ("Collective ops is aborted by: Error reported from /job:worker/task:1: The following "
     "tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\n"
     "The tasks have crashed.", "no heartbeat from /job:worker/replica:0/task:1"),
    ("Graph execution error:\n\n  File x\n\nCollective ops is aborted by: recvmsg:Connection "
     "reset by peer\nAdditional GRPC error information from remote target "
     "/job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RecvBuf:",
     "/job:worker/replica:0/task:1: recvmsg:Connection reset by peer"),
])
def test_a_lost_peer_becomes_one_line_naming_the_task(text, detail):
    from pipeline.devices.distribute import peer_failures

    with pytest.raises(PipelineError) as raised, peer_failures("extraction"):
        raise tf.errors.UnavailableError(None, None, text)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("extraction stopped: another worker of the TF_CONFIG cluster")
    assert f"({detail}); restart all workers" in message


def test_other_errors_pass_through_peer_failures():
    from pipeline.devices.distribute import peer_failures

    with pytest.raises(tf.errors.InvalidArgumentError), peer_failures():
        raise tf.errors.InvalidArgumentError(None, None, "bad shape")


# -- one process: the resolved strategies ---------------------------------------------------

def test_one_and_auto_resolve_to_a_single_replica_without_several_gpus():
    one = resolve_strategy("one")
    assert isinstance(one.strategy, tf.distribute.OneDeviceStrategy)
    assert one.replicas == 1 and one.chief and one.batch_size == "global"
    if len(tf.config.list_logical_devices("GPU")) < 2:
        auto = resolve_strategy("auto")
        assert auto.kind == "default" and auto.replicas == 1
        assert auto.strategy is tf.distribute.get_strategy()


@pytest.mark.parametrize("name", ["one", "auto"])
def test_distributed_predict_keeps_input_order_and_fills_a_memory_map(name, tmp_path):
    import keras
    from numpy.lib.format import open_memmap

    from pipeline.devices.distribute import distributed_predict

    distribution = resolve_strategy(name)
    keras.utils.set_random_seed(1)
    with distribution.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(13, 3)).astype("float32")
    labelled = tf.data.Dataset.from_tensor_slices((x, np.arange(13))).batch(4)
    expected = model.predict(x, verbose=0)
    got = distributed_predict(model, labelled, distribution.strategy)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    out = open_memmap(tmp_path / "features.npy", "w+", np.float32, (13, 2))
    assert distributed_predict(model, labelled.map(lambda a, b: a), distribution.strategy,
                               out=out) is out
    np.testing.assert_allclose(np.load(tmp_path / "features.npy"), expected, atol=1e-6)
    with pytest.raises(PipelineError, match="empty dataset"):
        distributed_predict(model, labelled.take(0), distribution.strategy)


# -- subprocesses: mirrored replicas and a cluster ------------------------------------------

def run_worker(mode: str, out: Path, *extra: str, env: dict[str, str] | None = None,
               ) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environment |= {"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen([sys.executable, str(WORKER), mode, str(out), *extra], cwd=ROOT,
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def free_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 free right now (the OS picks them), or skip the test."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    except OSError as error:
        pytest.skip(f"cannot bind a port on 127.0.0.1 for a local cluster: {error}")
    finally:
        for s in sockets:
            s.close()


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def assert_trained_like_one_device(result: Path, replicas: int) -> None:
    with np.load(result) as saved:
        assert int(saved["replicas"]) == replicas
        layers = sum(k.startswith("reference_") for k in saved.files)
        assert layers == 4
        for i in range(layers):
            moved = np.abs(saved[f"reference_{i}"] - saved[f"initial_{i}"]).max()
            assert moved > 1e-3, "the reference did not train"
            np.testing.assert_allclose(saved[f"distributed_{i}"], saved[f"reference_{i}"],
                                       atol=1e-5, rtol=1e-5)
        assert saved["spread"].shape == (37, 1)
        np.testing.assert_allclose(saved["spread"], saved["alone"], atol=1e-6, rtol=0)


def test_mirrored_over_two_cpus_trains_and_predicts_as_on_one_device(tmp_path):
    process = run_worker("mirrored", tmp_path)
    try:
        code, _, stderr = finish(process, START_TIMEOUT_S)
    finally:
        process.kill()
    assert code == 0, stderr[-2000:]
    assert_trained_like_one_device(tmp_path / "result.npz", replicas=2)


@pytest.fixture
def cluster():
    """``start(mode, out, *extra)`` -> two worker processes; all are killed at the end."""
    with ExitStack() as stack:
        def start(mode: str, out: Path, *extra: str) -> list[subprocess.Popen]:
            ports = free_ports(2)
            workers = [run_worker(mode, out, *extra,
                                  env={"TF_CONFIG": cluster_config(ports, i)})
                       for i in range(2)]
            for worker in workers:
                stack.callback(worker.kill)
            return workers

        yield start


def test_two_workers_train_and_predict_as_on_one_device(cluster, tmp_path):
    out = tmp_path / "run"
    chief, other = cluster("worker", out)
    code, _, stderr = finish(chief, START_TIMEOUT_S)
    assert code == 0, stderr[-2000:]
    code, stdout, stderr = finish(other, 30)
    assert code == 0, stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["result.npz"]  # the chief's only
    assert_trained_like_one_device(out / "result.npz", replicas=2)
    scratch = Path(stdout.split("scratch=")[1].split()[0])
    try:
        assert out not in scratch.parents
        assert_trained_like_one_device(scratch / "result.npz", replicas=2)
    finally:
        shutil.rmtree(scratch)


def test_a_killed_worker_stops_the_other_with_a_clear_error(cluster, tmp_path):
    out, mark = tmp_path / "run", tmp_path / "started"
    chief, other = cluster("endless", out, str(mark))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not mark.exists():
        assert chief.poll() is None and other.poll() is None, chief.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the cluster did not start training"
        time.sleep(0.2)
    other.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code, _, stderr = finish(chief, STOP_BOUND_S + 30)
    assert time.monotonic() - killed < STOP_BOUND_S
    assert code == 2
    error = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert error and "another worker of the TF_CONFIG cluster failed" in error[0], stderr[-2000:]
    assert "task:1" in error[0]  # names the worker that went silent
    # The chief wrote only whole files: checkpoints went through a temporary and a rename.
    assert [p.name for p in out.iterdir()] == ["checkpoint.npz"]
    with np.load(out / "checkpoint.npz") as checkpoint:
        assert len(checkpoint.files) == 4
