"""Benchmark: the classic augmentation as one affine resampling against Keras' five layers.

The same settings (``AugmentConfig()``: flip, rotation 40, shifts 0.2, shear 0.2, zoom 0.2) on
the same random photos in memory, two ways, side by side in one run:

- ``one affine``: what ``build_augmentation`` builds, ``RandomAffine``: the five parts
  composed into one matrix per photo, resampled once (gathers, XLA-compiled on TensorFlow);
- ``five layers``: Keras' ``RandomFlip``, ``RandomRotation``, ``RandomTranslation``,
  ``RandomShear``, ``RandomZoom`` one after another (what earlier versions built).

Each is timed in a traced function and mapped over ``tf.data`` (as fine-tuning runs it on a
CPU), the best of ``--repeats``. Target: one affine at least 3x the images/s of the five
layers in both.

    .venv/bin/python bench/bench_augmentation.py [--images 200] [--image-size 240]
"""

from __future__ import annotations

import argparse
import sys
import time

from common import at_least, exit_status, verdict

TARGET = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=at_least(20), default=200)
    parser.add_argument("--image-size", type=at_least(8), default=240)
    parser.add_argument("--batch-size", type=at_least(1), default=20)
    parser.add_argument("--repeats", type=at_least(1), default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.data.augment import AugmentConfig, RandomShear, build_augmentation
    from pipeline.training.loop import augmented

    size, batch = args.image_size, args.batch_size
    photos = np.random.default_rng(0).uniform(0, 255, (args.images, size, size, 3))
    photos = photos.astype("float32")
    layers = {
        "one affine": build_augmentation(AugmentConfig(), seed=1),
        "five layers": keras.Sequential([
            keras.layers.RandomFlip("horizontal", seed=1),
            keras.layers.RandomRotation(40 / 360, seed=1),
            keras.layers.RandomTranslation(0.2, 0.2, seed=1),
            RandomShear(0.2, 0.2, seed=1),
            keras.layers.RandomZoom(0.2, 0.2, seed=1)]),
    }
    rates: dict[tuple[str, str], float] = {}
    for name, layer in layers.items():
        traced = tf.function(lambda images, layer=layer: layer(images, training=True))
        dataset = augmented(
            tf.data.Dataset.from_tensor_slices((photos, np.zeros(len(photos)))).batch(batch),
            layer)
        chunks = [photos[i:i + batch] for i in range(0, len(photos), batch)]

        def in_graph(traced=traced, chunks=chunks) -> None:
            for chunk in chunks:
                np.asarray(traced(chunk))

        def in_tf_data(dataset=dataset) -> None:
            for _ in dataset:
                pass

        for where, work in (("traced function", in_graph), ("tf.data map", in_tf_data)):
            work()  # warm-up: tracing, XLA compilation
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                work()
                best = min(best, time.perf_counter() - start)
            rates[name, where] = len(photos) / best

    print(f"\n{args.images} photos of {size} px, batch {batch}: images/s")
    print(f"{'':18s} {'one affine':>11s} {'five layers':>12s} {'ratio':>7s}")
    met = []
    for where in ("traced function", "tf.data map"):
        ratio = rates["one affine", where] / rates["five layers", where]
        met.append(ratio >= TARGET)
        print(f"{where:18s} {rates['one affine', where]:11.0f} "
              f"{rates['five layers', where]:12.0f} {ratio:6.1f}x")
    print(f"target: one affine >= {TARGET:.0f}x the five layers: {verdict(all(met))}")
    return exit_status(*met)


if __name__ == "__main__":
    sys.exit(main())
