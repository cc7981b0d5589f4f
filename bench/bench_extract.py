"""Benchmark: feature extraction throughput of ``extract`` against the naive way and the ceiling.

On the same images of a prepared dataset, in one run, with the same conv base and weights:

    extract   the pipeline's own path: tf.data decoding (prefetched) feeding the frozen base,
              block4_pool written to a memory-mapped cache, block5_pool derived from it
    naive     a Python loop: load and resize a batch with PIL, preprocess it in NumPy, then
              ``model.predict`` on it (the book's ``ImageDataGenerator`` loop, without Keras 2)
    ceiling   the same base on images already decoded in memory: pure compute, no input work
              (the faster of ``predict_on_batch`` per batch and one ``predict`` over the array)

Each is timed after a warm-up batch; with ``--repeats`` the best time of each counts (the
CPU may be shared). Target: ``extract`` at least 90% of the ceiling.

    .venv/bin/python bench/bench_extract.py [--data DIR] [--images 256] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import (
    CANNOT_RUN,
    dataset_missing,
    dataset_parser,
    exit_status,
    print_rates,
    verdict,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = dataset_parser(__doc__)
    parser.add_argument("--images", type=int, default=256, help="images of the train split")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--base", default="vgg16")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per method")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN

    import keras
    import numpy as np
    from PIL import Image

    from pipeline.cache.features import ArrayBatches, FeatureCache, FeatureKey, fill_from_model
    from pipeline.data.dataset import load_split
    from pipeline.data.manifest import class_names, require_prepared
    from pipeline.models.bases import get_base
    from pipeline.models.transfer import build_features_model, split_at
    from pipeline.models.weights import resolve_weights

    manifest = require_prepared(args.data)
    base = get_base(args.base)
    weights = resolve_weights(args.weights, base, args.image_size)
    model = build_features_model(base, weights, args.image_size)
    size, batch = args.image_size, args.batch_size
    batches = -(-args.images // batch)
    count = min(batches * batch, sum(manifest["counts"]["train"].values()))
    files = sorted(p for name in class_names(manifest)
                   for p in (args.data / "train" / name).iterdir())[:count]
    print(f"{base.name}, {weights.detail}\n{count} images at {size} px, batch {batch}")

    # -- extract: the pipeline's path, into a throw-away cache -------------------------------
    bottom, top = split_at(model, base.top_block)
    key = FeatureKey(base.name, "bench-middle", "-", size, weights.preprocessing, "-", "train")

    def run_extract(cache_dir: Path) -> float:
        data = load_split(args.data, "train", size, batch, cache=False)
        cache = FeatureCache(cache_dir)
        start = time.perf_counter()
        middle = cache.write(key, count=count, feature_shape=tuple(bottom.output.shape[1:]),
                             label_shape=(1,), label_dtype="float32",
                             fill=fill_from_model(bottom, data.dataset.take(batches), verbose=0))
        mids = ArrayBatches(middle.features, middle.labels, batch)
        cache.write(replace(key, layer="bench-output"), count=count,
                    feature_shape=tuple(model.output.shape[1:]), label_shape=(1,),
                    label_dtype="float32",
                    fill=fill_from_model(top, (mids[i] for i in range(len(mids))), verbose=0))
        return time.perf_counter() - start

    # -- naive: PIL + NumPy preprocessing + predict per batch --------------------------------
    standalone = keras.Model(model.get_layer("preprocess").output, model.output)
    mean_std = {
        "caffe": lambda x: x[..., ::-1] - np.array([103.939, 116.779, 123.68], "float32"),
        "torch": lambda x: (x / 255.0 - np.array([0.485, 0.456, 0.406], "float32"))
        / np.array([0.229, 0.224, 0.225], "float32"),
        "tf": lambda x: x / 127.5 - 1.0,
        "none": lambda x: x,
    }[weights.preprocessing]

    def load_batch(paths) -> np.ndarray:
        return np.stack([
            np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR),
                       dtype="float32") for p in paths
        ])

    def run_naive() -> float:
        start = time.perf_counter()
        for i in range(0, count, batch):
            standalone.predict(mean_std(load_batch(files[i:i + batch])), verbose=0)
        return time.perf_counter() - start

    # -- ceiling: decoded images in memory ----------------------------------------------------
    in_memory = np.concatenate([images.numpy() for images, _ in
                                load_split(args.data, "train", size, batch,
                                           cache=False).dataset.take(batches)])[:count]

    def run_ceiling_batches() -> float:
        start = time.perf_counter()
        for i in range(0, count, batch):
            model.predict_on_batch(in_memory[i:i + batch])
        return time.perf_counter() - start

    def run_ceiling_predict() -> float:
        start = time.perf_counter()
        model.predict(in_memory, batch_size=batch, verbose=0)
        return time.perf_counter() - start

    # Warm up every path once (tracing, first allocations), then time.
    model.predict_on_batch(in_memory[:batch])
    model.predict(in_memory[:batch], batch_size=batch, verbose=0)
    standalone.predict(mean_std(load_batch(files[:batch])), verbose=0)
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_extract(Path(tmp) / "warm")
        for repeat in range(args.repeats):
            for name, method in (
                ("extract", lambda r=repeat: run_extract(Path(tmp) / f"r{r}")),
                ("naive", run_naive),
                ("ceiling (predict_on_batch)", run_ceiling_batches),
                ("ceiling (predict)", run_ceiling_predict),
            ):
                elapsed = method()
                times[name] = min(times.get(name, float("inf")), elapsed)
                print(f"  pass {repeat + 1}: {name:28s} {count / elapsed:6.2f} images/s")

    ceiling = max(count / times[k] for k in times if k.startswith("ceiling"))
    print_rates(times, count, ceiling)
    met = count / times["extract"] >= 0.9 * ceiling
    print(f"target extract >= 90% of ceiling: {verdict(met)}")
    return exit_status(met)


if __name__ == "__main__":
    sys.exit(main())
