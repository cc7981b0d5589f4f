"""Benchmark: augmented views against feature extraction, images/s, the same base and layer.

``finetune`` with cached views runs the frozen part of the base once per view on augmented
copies of the training photos (``pipeline.cache.views``); ``extract`` runs it once on the
plain photos. This times both on the training split of a prepared dataset, side by side in
one run: decoding alone, extraction (decode, frozen part), one view (decode, augmentation,
frozen part) as ``finetune`` computes it, and the augmentation alone, with random weights
(timing does not depend on their values).

Target (issue 25): views at least 80% of extraction's images/s. Exit status 0 when met,
1 when not, 2 when it cannot run (no prepared dataset).

    .venv/bin/python bench/bench_views.py --data data/oxford-flowers-17 [--images 512]
"""

from __future__ import annotations

import sys
import time

from common import (
    CANNOT_RUN,
    at_least,
    convolution_rates,
    dataset_missing,
    dataset_parser,
    exit_status,
    verdict,
)

TARGET = 0.8


def main(argv: list[str] | None = None) -> int:
    parser = dataset_parser(__doc__)
    parser.add_argument("--base", default="efficientnet_lite1")
    parser.add_argument("--layer", default="block6e_add",
                        help="the frozen part's last layer (Lite1's: below its top stage)")
    parser.add_argument("--images", type=at_least(32), default=512,
                        help="training photos timed (at most the split's)")
    parser.add_argument("--precision", choices=("float32", "mixed"), default="float32")
    args = parser.parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN

    import keras
    import numpy as np

    from pipeline.cache.features import predict_batch
    from pipeline.cache.views import augmented_view_computer
    from pipeline.data.augment import AugmentConfig, build_augmentation
    from pipeline.data.dataset import load_split
    from pipeline.models.bases import get_base
    from pipeline.models.folding import inference_model
    from pipeline.models.transfer import build_features_model
    from pipeline.models.weights import resolve_weights
    from pipeline.training.precision import precision_policy

    with precision_policy(args.precision):
        base = get_base(args.base)
        size = base.default_image_size
        features = build_features_model(base, resolve_weights("none", base, size), size)
        bottom = keras.Model(features.input, features.get_layer(args.layer).output)
        split = load_split(args.data, "train", size, 32, cache=False)
        data = split.dataset.take(-(-min(args.images, split.count) // 32))
        count = sum(len(labels) for _, labels in data)
        out = np.zeros((count, *bottom.output.shape[1:]), "float32")
        running = inference_model(bottom)
        running.predict_on_batch(np.zeros((32, size, size, 3), "float32"))  # traced

        def decode() -> None:
            for _ in data:
                pass

        def extract() -> None:
            offset = 0
            for images, _ in data:
                outputs = np.asarray(predict_batch(running, images))
                out[offset:offset + len(outputs)] = outputs
                offset += len(outputs)

        config = AugmentConfig()
        compute = augmented_view_computer(
            bottom, lambda: data, lambda seed: build_augmentation(config, None, seed=seed),
            seed=1, verbose=0)
        compute(0, out)  # traced
        augmentation = build_augmentation(config, None, seed=1)

        def augment() -> None:
            for images, _ in data:
                augmentation(images, training=True)

        seconds: dict[str, float] = {}
        for _ in range(2):  # interleaved; the best of two counts
            for name, work in (("decode", decode), ("extraction", extract),
                               ("one view", lambda: compute(1, out)),
                               ("decode + augmentation (eager)", augment)):
                start = time.perf_counter()
                work()
                seconds[name] = min(seconds.get(name, float("inf")), time.perf_counter() - start)
    ceiling = convolution_rates()

    print(f"\n{args.base} up to {args.layer}, {count} training photos of {args.data}, "
          f"{args.precision}")
    for name, elapsed in seconds.items():
        print(f"{name:32s} {count / elapsed:8.1f} images/s")
    ratio = seconds["extraction"] / seconds["one view"]
    print(f"machine ceiling, 3x3 convolution: float32 {ceiling['float32']:.0f} GFLOP/s, "
          f"bfloat16 {ceiling['bfloat16']:.0f} GFLOP/s")
    print(f"target: views >= {TARGET:.0%} of extraction's images/s: {ratio:.0%}, "
          f"{verdict(ratio >= TARGET)}")
    return exit_status(ratio >= TARGET)


if __name__ == "__main__":
    sys.exit(main())
