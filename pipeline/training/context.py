"""What a workflow trains under: its devices (strategy), its precision and XLA, together.

Keras 3 places a model's variables on the devices of the strategy whose scope is active when
the model is built, so a workflow builds, compiles and fits its models inside
``training_context``, entered once where it begins. Inside it:

- the strategy's scope (``pipeline.devices.distribute``): ``mirrored`` copies variables to every
  replica, and each global batch is split across them;
- the Keras dtype policy of ``precision`` (``pipeline.training.precision``);
- ``jit``: every classifier compiled gets it as Keras' ``jit_compile``;
- the active distribution (``pipeline.devices.strategies``): run folders and feature caches are
  written by the chief only, and feature extraction splits its batches across replicas.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from pipeline.devices.distribute import Distribution, resolve_strategy
from pipeline.devices.strategies import activated
from pipeline.errors import PipelineError
from pipeline.models.classifier import jit_compiling
from pipeline.training.options import TrainingOptions
from pipeline.training.precision import precision_policy


@functools.cache
def distribution(strategy: str) -> Distribution:
    """``strategy`` resolved once per process: TensorFlow sets up ``multiworker``'s
    collectives only once, and later workflows of the same process train on the same
    devices."""
    return resolve_strategy(strategy)


@contextlib.contextmanager
def training_context(options: TrainingOptions, *, trains_base: bool = False) -> Iterator[str]:
    """Train under ``options``' strategy, precision and jit; yields the dtype policy's name.

    ``trains_base``: the workflow trains the conv base's own layers, which decides what
    precision ``auto`` is on a CPU (``pipeline.training.precision``).

    A ``batch_size`` that does not split evenly across the replicas, and ``jit`` for replicas
    mirrored over logical CPUs (which XLA cannot run), are refused here, before any data is
    read.
    """
    active = distribution(options.strategy)
    active.per_replica_batch(options.batch_size)
    if options.jit and active.kind == "mirrored" and active.replicas > 1 and all(
            "CPU" in device.upper() for device in active.devices):
        # XLA compiles a CPU step for one device; it cannot reach the other replicas' copies.
        raise PipelineError(f"`jit` cannot compile a step mirrored over CPU devices "
                            f"({', '.join(active.devices)}); leave `jit` unset or train on one "
                            "device")
    with (activated(active), active.scope(), jit_compiling(options.jit_compile),
          precision_policy(options.precision, trains_base) as policy):
        yield policy
