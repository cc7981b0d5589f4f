"""Where training and extraction run: one device, all local GPUs, or a cluster of workers.

``strategy`` picks one of TensorFlow's own ``tf.distribute`` strategies:

    auto         ``mirrored`` when more than one GPU is visible, else TensorFlow's default
    one          ``OneDeviceStrategy`` on GPU:0 if there is one, else CPU:0
    mirrored     ``MirroredStrategy`` over the visible GPUs (without GPUs: over the logical
                 CPUs, which a test can make with ``tf.config.set_logical_device_configuration``)
    multiworker  ``MultiWorkerMirroredStrategy``: one process per machine, the cluster and
                 this process's place in it read from the ``TF_CONFIG`` environment variable

Batch sizes are GLOBAL, as Keras means them under a strategy: each batch the dataset yields
is split across the replicas, so a ``batch_size`` of 64 on 4 GPUs gives each GPU 16 images
and the same optimiser steps as 64 on one device (``per_replica_batch`` says so, or why not).

In a cluster every worker runs the same program, but only the chief writes run folders and
feature caches (``is_chief``); the others write wherever they must into a throw-away
directory (``worker_scratch_dir``), so no two processes ever write the same file.

A strategy must be resolved before any other TensorFlow work in the process: ``multiworker``
configures collective ops, which TensorFlow only allows at program start, and ``mirrored``
sees only the devices that exist when it is made.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.devices.strategies import STRATEGIES
from pipeline.errors import PipelineError

TF_CONFIG_ENV = "TF_CONFIG"
_CHIEF_TYPES = ("chief", "worker")  # task types that may be the chief, in order of precedence
# Errors a collective op raises when a peer died or stopped answering (heartbeats, timeouts).
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError, tf.errors.AbortedError)


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in the cluster ``TF_CONFIG`` describes."""

    task_type: str  # "chief", "worker", "evaluator", ...
    task_index: int
    cluster: dict[str, list[str]]  # task type -> "host:port" of each task

    @property
    def workers(self) -> int:
        """Processes that train: the chief (if named apart) and the workers."""
        return sum(len(self.cluster.get(kind, [])) for kind in _CHIEF_TYPES)

    @property
    def chief(self) -> bool:
        """The "chief" task if the cluster names one, else worker 0 (TensorFlow's rule)."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


@dataclass(frozen=True)
class Distribution:
    """A resolved strategy and what the rest of the pipeline needs to know about it."""

    kind: str  # "default" | "one" | "mirrored" | "multiworker"
    replicas: int  # model copies training in step (all workers together)
    devices: tuple[str, ...]  # this process's devices
    chief: bool  # whether this process writes run folders and caches
    strategy: tf.distribute.Strategy = field(repr=False, compare=False)
    batch_size: str = "global"  # a batch is split across the replicas (Keras' convention)

    def per_replica_batch(self, global_batch: int) -> int:
        """Images each replica sees of a ``global_batch``; see ``per_replica_batch``."""
        return per_replica_batch(global_batch, self.replicas)

    def scope(self) -> contextlib.AbstractContextManager:
        """Build and compile models inside this, so their variables are mirrored."""
        return self.strategy.scope()

    def output_dir(self, path: str | os.PathLike[str]) -> Path:
        """``path`` on the chief; on any other worker a scratch directory nobody reads."""
        return Path(path) if self.chief else worker_scratch_dir()

    def describe(self) -> str:
        """One line for logs: ``mirrored: 2 replicas on /cpu:0, /cpu:1 (global batch)``."""
        role = "" if self.kind != "multiworker" else (" chief" if self.chief else " worker")
        return (f"{self.kind}{role}: {self.replicas} replica{'s' * (self.replicas != 1)} "
                f"on {', '.join(self.devices)} (batch size is global)")


def per_replica_batch(global_batch: int, replicas: int) -> int:
    """``global_batch / replicas``, refusing a batch that does not split evenly.

    An uneven split would give replicas different batch sizes, so a step would no longer
    equal one step of ``global_batch`` on one device.
    """
    if replicas < 1:
        raise PipelineError(f"{replicas} replicas: a strategy needs at least one device")
    if global_batch < replicas or global_batch % replicas:
        raise PipelineError(
            f"`batch_size` {global_batch} does not split across {replicas} replicas; use a "
            f"multiple of {replicas} (the batch size is global: each replica gets "
            f"batch_size / {replicas})"
        )
    return global_batch // replicas


def read_tf_config(environ: Mapping[str, str] | None = None) -> ClusterTask | None:
    """The cluster task in ``TF_CONFIG``, None when it is unset; malformed: PipelineError."""
    text = (os.environ if environ is None else environ).get(TF_CONFIG_ENV)
    if text is None or not text.strip():
        return None
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise PipelineError(f"{TF_CONFIG_ENV} is not valid JSON ({error.msg} at character "
                            f"{error.pos}); set it like {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise PipelineError(f"{TF_CONFIG_ENV} needs a \"cluster\" and a \"task\" object; "
                            f"set it like {example}")
    for kind, addresses in cluster.items():
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and ":" in a for a in addresses)):
            raise PipelineError(f"{TF_CONFIG_ENV} cluster {kind!r} must be a list of "
                                f"\"host:port\" addresses, not {addresses!r}")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise PipelineError(f"{TF_CONFIG_ENV} task type {task_type!r} is not in its cluster "
                            f"({', '.join(cluster)}); set \"task\" to this machine's entry")
    if (not isinstance(task_index, int) or isinstance(task_index, bool)
            or not 0 <= task_index < len(cluster[task_type])):
        raise PipelineError(f"{TF_CONFIG_ENV} task index {task_index!r} is out of range for "
                            f"the {len(cluster[task_type])} {task_type!r} addresses")
    if not any(kind in cluster for kind in _CHIEF_TYPES):
        raise PipelineError(f"{TF_CONFIG_ENV} cluster has no \"chief\" or \"worker\" tasks")
    return ClusterTask(task_type, task_index, {k: list(v) for k, v in cluster.items()})


def is_chief(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process writes results: True alone, else TF_CONFIG's chief decides."""
    task = read_tf_config(environ)
    return task is None or task.chief


def worker_scratch_dir(prefix: str = "pipeline-worker-") -> Path:
    """A new temporary directory for a non-chief worker's writes (which nobody reads).

    Keras' multi-worker saving has every worker write (some writes take part in
    collectives), so non-chief workers need somewhere harmless to put their copy.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


def resolve_strategy(name: str = "auto", *,
                     collective_timeout_s: float | None = None) -> Distribution:
    """The ``tf.distribute`` strategy called ``name``, with its replica count and role.

    ``collective_timeout_s`` (``multiworker`` only) makes a collective that waits longer
    for a peer fail instead of waiting on; without it a dead peer is noticed by
    TensorFlow's heartbeats (about 10 s), which covers a killed or crashed worker.
    """
    if name not in STRATEGIES:
        raise PipelineError(f"`strategy` {name!r} is not one of {', '.join(STRATEGIES)}")
    if name == "multiworker":  # first: listing devices would start TensorFlow's context
        return _multiworker(collective_timeout_s)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "one":
        device = gpus[0] if gpus else tf.config.list_logical_devices("CPU")[0].name
        return Distribution("one", 1, (device,), True, tf.distribute.OneDeviceStrategy(device))
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return Distribution("mirrored", strategy.num_replicas_in_sync, tuple(devices), True,
                            strategy)
    strategy = tf.distribute.get_strategy()
    device = gpus[0] if gpus else tf.config.list_logical_devices("CPU")[0].name
    return Distribution("default", 1, (device,), True, strategy)


def _multiworker(collective_timeout_s: float | None) -> Distribution:
    task = read_tf_config()  # checked here; TensorFlow reads the same variable itself
    if task is None:
        raise PipelineError(
            f"`strategy` multiworker needs the {TF_CONFIG_ENV} environment variable on every "
            "worker (the cluster's \"host:port\" list and this worker's \"task\"); it is not set"
        )
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=collective_timeout_s)
    try:
        strategy = _KerasMultiWorkerMirroredStrategy(communication_options=options)
    except RuntimeError as error:
        raise PipelineError(f"`strategy` multiworker must be resolved before any other "
                            f"TensorFlow work in the process ({error})") from None
    devices = tuple(strategy.extended.worker_devices)
    return Distribution("multiworker", strategy.num_replicas_in_sync, devices, task.chief,
                        strategy)


class _KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3's ``fit`` gives it.

    Keras 3 (keras-team/keras#20585) reduces a whole (x, y) batch structure at once, and
    scalar losses with ``axis=0``; the collective strategy accepts neither. Reducing leaf by
    leaf, scalars across replicas only, is what those calls mean.
    """

    def reduce(self, reduce_op: Any, value: Any, axis: int | None = None) -> Any:
        def one(leaf: Any) -> Any:
            rank = self.experimental_local_results(leaf)[0].shape.rank
            return super(_KerasMultiWorkerMirroredStrategy, self).reduce(
                reduce_op, leaf, None if rank == 0 else axis)

        return tf.nest.map_structure(one, value)


@contextlib.contextmanager
def peer_failures(what: str = "training") -> Iterator[None]:
    """Turn "a worker died or stopped answering" into one PipelineError line.

    Wrap ``fit``/``predict`` under ``multiworker`` in this: when a peer is killed the
    collective ops fail (heartbeat or ``collective_timeout_s``) with a long TensorFlow
    error; this says what happened and what to do.
    """
    try:
        yield
    except _PEER_ERRORS as error:
        raise PipelineError(
            f"{what} stopped: another worker of the {TF_CONFIG_ENV} cluster failed or stopped "
            f"answering ({_peer_detail(error)}); restart all workers"
        ) from None


def _peer_detail(error: Exception) -> str:
    """The useful part of a collective's error: which task went away and how."""
    text = str(error)
    tasks = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", text)))
    if "heartbeat" in text and tasks:
        return f"no heartbeat from {', '.join(tasks)}"
    cause = re.search(r"aborted by: (.+)", text)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line[0].isspace() and not line.startswith(("[[", "Graph"))]
    gist = cause.group(1).strip() if cause else (lines or [type(error).__name__])[-1]
    return f"{', '.join(tasks)}: {gist[:160]}" if tasks else f"{type(error).__name__}: {gist[:160]}"


def distributed_predict(model: Any, dataset: tf.data.Dataset,
                        strategy: tf.distribute.Strategy,
                        out: np.ndarray | None = None) -> np.ndarray:
    """``model``'s outputs for every input of ``dataset``, in input order, as on one device.

    ``dataset`` yields batches (global: split across replicas) of inputs, or of
    ``(inputs, labels...)`` tuples whose first item is the input. Every worker of a cluster
    runs this with the same dataset; each gets all the outputs. Each input carries its
    position through the split, and outputs are put back by position, so the result does not
    depend on how the strategy shards or orders batches. ``out`` (e.g. a memory-mapped
    ``.npy``) receives them in place when given, else an array is returned.
    """
    first = dataset.map(lambda *item: item[0])
    numbered = first.scan(tf.constant(0, tf.int64), _number_batch)  # (positions, inputs)
    options = tf.data.Options()
    # DATA: every worker reads the whole stream and keeps its share of each batch, so
    # positions count the same on all workers (FILE sharding would number each one's files).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    distributed = strategy.experimental_distribute_dataset(numbered.with_options(options))
    step = _predict_step(model, strategy)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for index, x in distributed:
        got_index, got = step(index, x)
        got_index, got = got_index.numpy(), np.asarray(got)
        if out is not None:
            out[got_index] = got
        parts.append((got_index, got if out is None else np.empty(0)))
    if not parts:
        raise PipelineError("distributed prediction got an empty dataset; nothing to predict")
    index = np.concatenate([p[0] for p in parts])
    if not np.array_equal(np.sort(index), np.arange(index.size)):
        raise PipelineError(f"distributed prediction saw {index.size} outputs, not each of "
                            "the inputs once; the dataset must be the same on every worker")
    if out is not None:
        return out
    result = np.empty((index.size, *parts[0][1].shape[1:]), parts[0][1].dtype)
    for got_index, got in parts:
        result[got_index] = got
    return result


_STEPS: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()


def _predict_step(model: Any, strategy: tf.distribute.Strategy) -> Any:
    """``model``'s prediction step under ``strategy``, traced once and kept with the model,
    so predicting batch by batch (feature extraction) does not retrace for every batch."""
    steps = _STEPS.setdefault(model, {})
    if id(strategy) not in steps:
        held = weakref.ref(model)  # not the model itself: the cache must not keep it alive

        @tf.function(reduce_retracing=True)
        def step(index: Any, x: Any) -> tuple[Any, Any]:
            y = strategy.run(lambda batch: held()(batch, training=False), args=(x,))
            return strategy.gather(index, axis=0), strategy.gather(y, axis=0)

        steps[id(strategy)] = step
    return steps[id(strategy)]


def _number_batch(start: tf.Tensor, x: tf.Tensor) -> tuple[tf.Tensor, tuple[Any, Any]]:
    """scan step: the positions ``start, start+1, ...`` of the batch ``x``."""
    size = tf.shape(x, out_type=tf.int64)[0]
    return start + size, (tf.range(start, start + size), x)
