"""Benchmark: one fine-tuning epoch, cached top against the full model, on the same images.

The model is the one ``finetune`` trains: a conv base (VGG16 by default) with the flatten
head, its top block unfrozen. ``full`` is a training epoch of the whole model on the
images (decoded and kept in memory beforehand, as ``load_split`` does after the first
epoch); ``cached top`` is a training epoch of only the layers from the first unfrozen one
up, on the frozen part's output computed once (that one-time cost is printed too, with
the number of epochs after which caching has paid for itself). Both are timed after a
warm-up step, with the same batch size, optimizer and data. Target: at least 3x faster.

    .venv/bin/python bench/bench_finetune.py [--data DIR] [--images 200]
"""

from __future__ import annotations

import argparse
import sys
import time

from common import CANNOT_RUN, dataset_missing, dataset_parser, exit_status, verdict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = dataset_parser(__doc__)
    parser.add_argument("--images", type=int, default=200, help="training images per epoch")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=20, help="finetune's default")
    parser.add_argument("--base", default="vgg16")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--unfreeze", default="top")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN

    import numpy as np

    from pipeline.data.dataset import load_split
    from pipeline.models.bases import get_base
    from pipeline.models.classifier import compile_classifier
    from pipeline.models.transfer import build_transfer_model, replace_augmentation, unfreeze
    from pipeline.models.weights import resolve_weights
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.finetune.cached_top import cached_top_split
    from pipeline.workflows.finetune.config import FinetuneConfig

    base = get_base(args.base)
    weights = resolve_weights(args.weights, base, args.image_size)
    batch = args.batch_size
    steps = max(args.images // batch, 1)
    count = steps * batch
    data = load_split(args.data, "train", args.image_size, batch, shuffle=True, seed=0)
    images, labels = [], []
    for x, y in data.dataset.take(steps):
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)

    full = build_transfer_model(base, weights, args.image_size, 2)
    trainable = unfreeze(full, base, args.unfreeze)
    twin = replace_augmentation(full, None)  # same weights, for the cached path
    bottom, top = cached_top_split(twin)
    print(f"{base.name}, {weights.detail}\n{count} images at {args.image_size} px, batch {batch}; "
          f"trainable: {', '.join(trainable)}; cached: output of {bottom.layers[-1].name}")

    options = TrainingOptions().with_defaults(FinetuneConfig.TRAINING_DEFAULTS)  # finetune's
    compile_classifier(full, 2, options.optimizer, options.learning_rate)
    compile_classifier(top, 2, options.optimizer, options.learning_rate)

    # Warm-up: trace the train steps once, outside the timing.
    full.fit(images[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    features = bottom.predict(images, batch_size=batch, verbose=0)
    once = time.perf_counter() - start
    top.fit(features[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)

    start = time.perf_counter()
    full.fit(images, labels, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    full_epoch = time.perf_counter() - start
    start = time.perf_counter()
    top.fit(features, labels, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    cached_epoch = time.perf_counter() - start

    speedup = full_epoch / cached_epoch
    break_even = once / max(full_epoch - cached_epoch, 1e-9)
    print(f"\n{'epoch of':28s} {'seconds':>8s} {'images/s':>9s}")
    print(f"{'full model':28s} {full_epoch:8.1f} {count / full_epoch:9.1f}")
    print(f"{'cached top':28s} {cached_epoch:8.1f} {count / cached_epoch:9.1f}")
    print(f"{'(once) frozen part output':28s} {once:8.1f} {count / once:9.1f}")
    print(f"\ncached top is {speedup:.1f}x faster per epoch; caching pays for itself after "
          f"{break_even:.1f} epochs")
    print(f"target >= 3x: {verdict(speedup >= 3)}")
    return exit_status(speedup >= 3)


if __name__ == "__main__":
    sys.exit(main())
