"""Benchmark: peak memory of extraction and head training stays flat as the dataset grows.

Writes N random-ish 128 px JPEGs into a temporary folder, then for two dataset sizes (the
larger at least 4x the smaller), each in a fresh subprocess so that peak memory is its own:

    parts     stream-decode the JPEGs with tf.data (no cache), run a small conv stack over
              them at 96 px, write its output into memory-mapped ``.npy`` parts of
              ``--part-rows`` rows (each closed when full), then train a Flatten+Dense head
              for an epoch reading the parts one at a time through memory maps
    pipeline  the same images and conv stack through the project's own feature cache
              (``FeatureCache.write`` + ``fill_from_model``: parts appended with ordinary
              writes) and ``ArrayBatches`` over ``NpyRows`` (rows read per batch) for the head

Peak resident memory (``ru_maxrss`` of the subprocess) counts the pages of mapped files it
touched, so a whole-file memory map shows up as growing with the dataset even though the
kernel could drop those pages under pressure. Target: the larger size's peak at most
1.25x the smaller's, for ``pipeline`` (what the workflows run); ``parts`` is the reference.

    .venv/bin/python bench/bench_memory.py [--sizes 2000 8000] [--methods parts pipeline]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CANNOT_RUN, exit_status, verdict

TARGET = 1.25
JPEG_SIZE = 128
METHODS = ("parts", "pipeline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(2000, 8000),
                        help="images in the small and the large dataset (at least 4x apart)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--image-size", type=int, default=96, help="model input, pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--part-rows", type=int, default=512, help="rows per .npy part")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "IMAGES", "FOLDER"),
                        help=argparse.SUPPRESS)  # internal: one measured run
    return parser.parse_args(argv)


# -- the parent: images, subprocesses, table ------------------------------------------------

def write_images(folder: Path, count: int) -> None:
    """``count`` 128 px JPEGs: smooth colour gradients plus noise, so JPEG has work to do."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 12, (8, JPEG_SIZE, JPEG_SIZE, 3)).astype(np.float32)  # reused
    ramp = np.linspace(0, 1, JPEG_SIZE, dtype=np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        low, high = rng.uniform(0, 255, (2, 1, 1, 3)).astype(np.float32)
        angle = rng.uniform(0, 1)
        field = (angle * ramp[None, :, None] + (1 - angle) * ramp[:, None, None])
        pixels = low + (high - low) * field + np.roll(noise[i % 8], i, axis=(0, 1))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"{i:06d}_{i % 2}.jpg", quality=90)


def measure(method: str, images: int, folder: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", method, str(images), str(folder),
               "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
               "--part-rows", str(args.part_rows)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{method} on {images} images failed: {tail}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        method, images, folder = args.child
        print(json.dumps(run_child(method, int(images), Path(folder), args)))
        return 0
    small, large = sorted(args.sizes)
    if large < 4 * small:
        print(f"cannot run: sizes {small} and {large} are less than 4x apart", file=sys.stderr)
        return CANNOT_RUN
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        images = Path(tmp) / "images"
        start = time.perf_counter()
        write_images(images, large)
        print(f"{large} JPEGs of {JPEG_SIZE} px written in {time.perf_counter() - start:.0f} s; "
              f"model input {args.image_size} px, batch {args.batch_size}")
        results: dict[str, dict[int, dict]] = {}
        for method in args.methods:
            for count in (small, large):
                try:
                    got = measure(method, count, images, args)
                except RuntimeError as error:
                    print(f"cannot run: {error}", file=sys.stderr)
                    return CANNOT_RUN
                results.setdefault(method, {})[count] = got
                print(f"  {method:8s} {count:6d} images: peak RSS {got['peak_rss_mb']:7.1f} MB, "
                      f"features {got['features_mb']:6.1f} MB, {got['seconds']:5.1f} s")
    print(f"\n{'method':10s} {'peak MB ' + str(small):>14s} {'peak MB ' + str(large):>14s} "
          f"{'ratio':>6s} {'features MB ' + str(large):>18s}")
    for method, by_size in results.items():
        ratio = by_size[large]["peak_rss_mb"] / by_size[small]["peak_rss_mb"]
        print(f"{method:10s} {by_size[small]['peak_rss_mb']:14.1f} "
              f"{by_size[large]['peak_rss_mb']:14.1f} {ratio:6.2f} "
              f"{by_size[large]['features_mb']:18.1f}")
    if "pipeline" not in results:
        print("target not checked: it applies to the pipeline method")
        return 0
    ratio = results["pipeline"][large]["peak_rss_mb"] / results["pipeline"][small]["peak_rss_mb"]
    met = ratio <= TARGET
    print(f"target pipeline peak({large}) <= {TARGET}x peak({small}): {verdict(met)} "
          f"({ratio:.2f}x)")
    return exit_status(met)


# -- a child: one method on one dataset size ------------------------------------------------

def run_child(method: str, count: int, folder: Path, args: argparse.Namespace) -> dict:
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    paths = sorted(str(p) for p in folder.glob("*.jpg"))[:count]
    labels = np.array([float(p[-5]) for p in paths], np.float32)
    size, batch = args.image_size, args.batch_size

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, (size, size)), label

    images = (tf.data.Dataset.from_tensor_slices((paths, labels))
              .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
              .batch(batch).prefetch(2))
    keras.utils.set_random_seed(0)
    base = keras.Sequential([
        keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(128, 3, strides=2, padding="same", activation="relu"),
    ])
    shape = tuple(base.compute_output_shape((None, size, size, 3))[1:])
    head = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                             keras.layers.Dense(64, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")])
    head.compile("rmsprop", "binary_crossentropy")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="features-", dir=folder.parent) as out:
        if method == "parts":
            parts = write_parts(base, images, Path(out), count, shape, args.part_rows)
            head.fit(part_batches(parts, batch), epochs=1, verbose=0)
        else:
            from pipeline.cache.features import (
                ArrayBatches,
                FeatureCache,
                FeatureKey,
                fill_from_model,
            )

            key = FeatureKey("bench", "memory", "-", size, "none", "-", "train")
            cached = FeatureCache(out).write(
                key, count=count, feature_shape=shape, label_shape=(1,), label_dtype="float32",
                fill=fill_from_model(base, images, verbose=0))
            head.fit(ArrayBatches(cached.features, cached.labels, batch, shuffle=True),
                     epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"images": count, "peak_rss_mb": peak_kb / 1024, "seconds": seconds,
            "features_mb": count * int(np.prod(shape)) * 4 / 2**20}


def write_parts(model, batches, folder: Path, count: int, shape: tuple[int, ...],
                part_rows: int) -> list[tuple[Path, Path]]:
    """Model outputs into ``.npy`` parts of ``part_rows`` rows, each map closed when full."""
    import numpy as np
    from numpy.lib.format import open_memmap

    parts, features, labels, filled, offset = [], None, None, 0, 0
    for inputs, targets in batches:
        outputs = np.asarray(model.predict_on_batch(inputs), np.float32)
        targets = np.asarray(targets, np.float32).reshape(-1, 1)
        row = 0
        while row < len(outputs):
            if features is None:
                rows = min(part_rows, count - offset)
                paths = (folder / f"features-{len(parts):05d}.npy",
                         folder / f"labels-{len(parts):05d}.npy")
                features = open_memmap(paths[0], "w+", np.float32, (rows, *shape))
                labels = open_memmap(paths[1], "w+", np.float32, (rows, 1))
                parts.append(paths)
                filled = 0
            take = min(len(outputs) - row, len(features) - filled)
            features[filled:filled + take] = outputs[row:row + take]
            labels[filled:filled + take] = targets[row:row + take]
            filled, row, offset = filled + take, row + take, offset + take
            if filled == len(features):
                features.flush()
                labels.flush()
                features = labels = None  # unmap: its pages leave this process
    return parts


def part_batches(parts: list[tuple[Path, Path]], batch_size: int):
    """(features, labels) batches read part by part; only the current part is mapped."""
    import numpy as np

    for features_path, labels_path in parts:
        features = np.load(features_path, mmap_mode="r")
        labels = np.load(labels_path, mmap_mode="r")
        for first in range(0, len(features), batch_size):
            yield (np.array(features[first:first + batch_size]),
                   np.array(labels[first:first + batch_size]))
        del features, labels  # unmap before the next part


if __name__ == "__main__":
    sys.exit(main())
