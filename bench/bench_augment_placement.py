"""Benchmark: where augmentation runs fastest, inside the model or inside tf.data, side by side.

The same classic augmentation (``AugmentConfig()``: flip, rotation, shifts, shear, zoom)
and the book's small convnet (``train --augment``), trained on the same images, two ways:

- ``in model``: the augmentation layers are the model's first layers (what ``train`` and
  ``extract --augment`` do): on a GPU they run on the accelerator, inside the compiled step;
- ``in tf.data``: the same layers mapped over the input pipeline
  (``num_parallel_calls=AUTOTUNE``), so they run on the CPU, overlapped with the step.

Images are generated in memory (no dataset needed), so only the placement differs. Prints
images/s of each, their ratio, and where ``AugmentConfig(placement="auto")`` puts it on this
machine (tf.data on a CPU, the model on a GPU). Target: that automatic choice is at least 0.9x
as fast as the other placement here — else the default is wrong for this machine, and the
benchmark exits 1 to say so. The geometric parts are one ``RandomAffine``, whose gathers
compile with XLA, so with ``--jit`` they may sit inside the compiled step as well.

    .venv/bin/python bench/bench_augment_placement.py [--images 512] [--image-size 150]
"""

from __future__ import annotations

import argparse
import sys
import time

from common import exit_status, verdict

TARGET = 0.9  # the automatic placement's images/s at least this fraction of the other's


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512, help="training images per epoch")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32, help="train's default")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.data.augment import AugmentConfig, build_augmentation
    from pipeline.models.classifier import compile_classifier
    from pipeline.models.scratch import build_scratch_convnet
    from pipeline.training.loop import augmentation_in_model

    rng = np.random.default_rng(0)
    size = args.image_size
    images = rng.uniform(0, 255, (args.images, size, size, 3)).astype("float32")
    labels = rng.integers(0, 2, (args.images, 1)).astype("float32")

    def timed(model: keras.Model, dataset: tf.data.Dataset) -> float:
        """Images/s of ``args.epochs`` training epochs, after a warm-up epoch."""
        compile_classifier(model, 2, "rmsprop", 1e-4)
        model.fit(dataset, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(dataset, epochs=args.epochs, verbose=0)
        return args.images * args.epochs / (time.perf_counter() - start)

    base = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    keras.utils.set_random_seed(1)
    in_model = timed(
        build_scratch_convnet(size, 2, augmentation=build_augmentation(AugmentConfig(), seed=1)),
        base.batch(args.batch_size).prefetch(tf.data.AUTOTUNE),
    )
    keras.utils.set_random_seed(1)
    augmentation = build_augmentation(AugmentConfig(), seed=1)
    mapped = base.batch(args.batch_size).map(
        lambda x, y: (augmentation(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)
    in_data = timed(build_scratch_convnet(size, 2), mapped)

    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    auto_in_model = augmentation_in_model(AugmentConfig())
    chosen, other = (in_model, in_data) if auto_in_model else (in_data, in_model)
    print(f"device: {device}; {args.images} images of {size} px, batch {args.batch_size}, "
          f"{args.epochs} timed epochs")
    print(f"{'placement':<12} {'images/s':>10}")
    print(f"{'in model':<12} {in_model:10.1f}{'  <- auto' if auto_in_model else ''}")
    print(f"{'in tf.data':<12} {in_data:10.1f}{'' if auto_in_model else '  <- auto'}")
    met = chosen / other >= TARGET
    print(f"auto / other = {chosen / other:.2f}x (target >= {TARGET}x): {verdict(met)}")
    return exit_status(met)


if __name__ == "__main__":
    sys.exit(main())
