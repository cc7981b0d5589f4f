"""A worker process for tests/devices/test_distribute.py: strategies are set up at its start.

    python tests/devices/distribute_worker.py mirrored OUT      two logical CPUs, MirroredStrategy
    python tests/devices/distribute_worker.py worker OUT        one worker of the TF_CONFIG cluster
    python tests/devices/distribute_worker.py endless OUT MARK  a worker that trains until stopped

``mirrored`` and ``worker`` train a tiny model distributed and, in the same process, on one
device, predict with ``distributed_predict`` and with ``model.predict``, and save all of it
(the chief into OUT, atomically; another worker into its scratch directory, whose path it
prints as ``scratch=PATH``). ``endless`` trains a long time, the chief saving a checkpoint
atomically every few steps, touching MARK once training is under way; when a peer dies it
prints the PipelineError as ``error: ...`` and exits 2, as the CLI does.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import tensorflow as tf

GLOBAL_BATCH = 16
SAMPLES = 64
PREDICT_SAMPLES = 37  # not a multiple of the batch: the last batch splits unevenly


def tiny_data(samples: int = SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(samples, 1))).astype("float32")
    return x, y


def tiny_model(distribution=None):
    """A small two-layer net, initialised the same way every time (seeded)."""
    import keras

    keras.utils.set_random_seed(0)
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    with scope:
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def train(distribution=None, repeat: int = 2, callbacks=()) -> list[np.ndarray]:
    """Weights after ``repeat`` epochs of SGD on ``tiny_data`` in global batches, unshuffled."""
    model = tiny_model(distribution)
    x, y = tiny_data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).repeat(repeat)
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=list(callbacks))
    return model.get_weights()


def predictions(distribution) -> tuple[np.ndarray, np.ndarray]:
    """The same seeded model's outputs distributed and on one device (``model.predict``)."""
    from pipeline.devices.distribute import distributed_predict

    x, _ = tiny_data(PREDICT_SAMPLES)
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x)))).batch(8)
    spread = distributed_predict(tiny_model(distribution), data, distribution.strategy)
    alone = tiny_model().predict(x, batch_size=8, verbose=0)
    return spread, alone


def save(path: Path, distributed: list[np.ndarray], reference: list[np.ndarray],
         spread: np.ndarray, alone: np.ndarray, replicas: int) -> None:
    from pipeline.system.atomic import atomic_path

    arrays = {f"distributed_{i}": w for i, w in enumerate(distributed)}
    arrays |= {f"reference_{i}": w for i, w in enumerate(reference)}
    arrays |= {f"initial_{i}": w for i, w in enumerate(tiny_model().get_weights())}
    with atomic_path(path) as tmp:
        np.savez(tmp, spread=spread, alone=alone, replicas=replicas, **arrays)


def main(argv: list[str]) -> int:
    mode, out = argv[0], Path(argv[1])
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pipeline.devices.distribute import resolve_strategy
    from pipeline.errors import PipelineError

    # Resolved before any other TensorFlow work, as multiworker requires.
    distribution = resolve_strategy("multiworker" if mode != "mirrored" else "mirrored")
    if mode == "endless":
        return endless(distribution, out, Path(argv[2]), PipelineError)
    distributed = train(distribution)
    reference = train(None)
    spread, alone = predictions(distribution)
    folder = distribution.output_dir(out)
    save(folder / "result.npz", distributed, reference, spread, alone, distribution.replicas)
    if not distribution.chief:
        print(f"scratch={folder}", flush=True)
    return 0


def endless(distribution, out: Path, mark: Path, error_type) -> int:
    import keras

    from pipeline.devices.distribute import peer_failures
    from pipeline.system.atomic import atomic_path

    class Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 20:
                mark.touch()
            if batch % 10 == 0 and distribution.chief:
                with atomic_path(out / "checkpoint.npz") as tmp:
                    np.savez(tmp, *self.model.get_weights())

    try:
        with peer_failures():
            train(distribution, repeat=100_000, callbacks=[Progress()])
    except error_type as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
