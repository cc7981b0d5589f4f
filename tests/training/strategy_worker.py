"""A process for tests/training/test_strategy.py with two logical CPUs, made at its start.

    python tests/training/strategy_worker.py DATA OUT

Trains ``DATA`` with ``cli.py train --strategy mirrored`` into ``OUT/models/mirrored``;
computes one split's features with a small seeded conv model under a mirrored
``training_context`` and on one device (``OUT/features.npz``); and writes the errors for a
batch that does not split across the replicas and for ``jit`` over CPU replicas
(``OUT/refused.txt``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import tensorflow as tf

IMAGE_SIZE = 48


def two_logical_cpus() -> None:
    """Split the CPU in two before TensorFlow starts, so ``mirrored`` has two replicas."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def train(data: Path, out: Path) -> None:
    import cli

    cli.main([
        "train", "--data", str(data), "--models-dir", str(out / "models"),
        "--run-name", "mirrored", "--image-size", str(IMAGE_SIZE), "--epochs", "1",
        "--batch-size", "8", "--strategy", "mirrored", "--no-jit",
    ], standalone_mode=False)


def small_model():
    import keras

    keras.utils.set_random_seed(3)
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    outputs = keras.layers.Conv2D(4, 3, activation="relu")(images)
    return keras.Model(images, keras.layers.GlobalAveragePooling2D(name="pool")(outputs))


def features(data: Path, out: Path) -> None:
    """One split's features under a 2-replica mirrored strategy and on one device."""
    from pipeline.cache.dataset_features import FeatureSource, image_features
    from pipeline.cache.features import FeatureCache
    from pipeline.data.manifest import manifest_checksum, require_prepared
    from pipeline.training.context import training_context
    from pipeline.training.options import TrainingOptions

    checksum = manifest_checksum(require_prepared(data))
    source = FeatureSource(data, checksum, "small", IMAGE_SIZE, "none",
                           batch_size=6, verbose=0)  # 32 images: the last batch splits 1 + 1
    with training_context(TrainingOptions(strategy="mirrored", batch_size=6)):
        spread = image_features(FeatureCache(out / "mirrored"), small_model(), source, "train")
    alone = image_features(FeatureCache(out / "alone"), small_model(), source, "train")
    np.savez(out / "features.npz", spread=np.asarray(spread.features),
             alone=np.asarray(alone.features), spread_labels=np.asarray(spread.labels),
             alone_labels=np.asarray(alone.labels))


def refused(out: Path) -> None:
    """The errors of options the two replicas cannot train with, one per line."""
    from pipeline.errors import PipelineError
    from pipeline.training.context import training_context
    from pipeline.training.options import TrainingOptions

    errors = []
    for options in (TrainingOptions(strategy="mirrored", batch_size=5),
                    TrainingOptions(strategy="mirrored", batch_size=4, jit=True)):
        try:
            with training_context(options):
                errors.append("accepted")
        except PipelineError as error:
            errors.append(str(error))
    (out / "refused.txt").write_text("\n".join(errors))


if __name__ == "__main__":
    two_logical_cpus()
    data_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    train(data_dir, out_dir)
    features(data_dir, out_dir)
    refused(out_dir)
