"""Check: the EfficientNet-Lite ports recognise cats and dogs as ImageNet classifiers.

A wrong transpose or a wrong block layout still yields a network that runs; only real
photos tell. For each of lite0/1/2 with its ImageNet classifier and offline weights, on the
first ``--per-class`` cat and dog photos of a Kaggle dogs-vs-cats folder (``cat.N.jpg``,
``dog.N.jpg``, each resized to the variant's own size as the PyTorch port does), count the
photos whose top-1 / top-5 ImageNet classes include the right family (cats: classes
281-285, dogs: 151-268). Targets per variant: top-5 >= 95%, top-1 >= 85%. Then the
throughput of the no-top Lite1 features model (float32) on ``--speed-images`` photos.

Exits non-zero, saying why, when the photos or the weights packages are missing or a
target is missed.

    .venv/bin/python bench/imagenet_check.py [--photos DIR] [--per-class 100]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, when run as a script

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared/datasets/dogs-vs-cats/train"
FAMILIES = {"cat": range(281, 286), "dog": range(151, 269)}  # ImageNet class indices
TARGET_TOP5, TARGET_TOP1 = 0.95, 0.85
VARIANTS = ("lite0", "lite1", "lite2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS,
                        help=f"folder of cat.N.jpg / dog.N.jpg (default {DEFAULT_PHOTOS})")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--speed-images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


def photos(folder: Path, label: str, count: int) -> list[Path]:
    """The first ``count`` photos of ``label`` by their number (cat.0.jpg, cat.1.jpg, ...)."""
    pattern = re.compile(rf"^{label}\.(\d+)\.jpe?g$", re.IGNORECASE)
    numbered = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(numbered)[:count]]


def load(paths: list[Path], size: int):
    import numpy as np
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size),
                                                                    Image.BILINEAR), "float32")
                     for p in paths])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.photos.is_dir():
        print(f"skipped: photo folder {args.photos} not found (give --photos DIR)")
        return 1
    picks = {label: photos(args.photos, label, args.per_class) for label in FAMILIES}
    if any(len(p) < args.per_class for p in picks.values()):
        print(f"skipped: {args.photos} has fewer than {args.per_class} cat and dog photos")
        return 1

    import keras
    import numpy as np

    from pipeline.errors import PipelineError
    from pipeline.models.bases import get_base
    from pipeline.models.efficientnet_lite import efficientnet_lite, load_torch_checkpoint
    from pipeline.models.preprocessing import ImagePreprocessing
    from pipeline.models.transfer import build_features_model
    from pipeline.models.weights import resolve_weights

    labels = [label for label, paths in picks.items() for _ in paths]
    files = [p for paths in picks.values() for p in paths]
    rows, failures = [], []
    for variant in args.variants:
        base = get_base(f"efficientnet_{variant}")
        try:
            weights = resolve_weights("imagenet", base, base.default_image_size)
        except PipelineError as error:
            print(f"cannot run: {error}")
            return 1
        size = base.default_image_size
        inputs = keras.Input((size, size, 3))
        model = efficientnet_lite(variant, ImagePreprocessing("lite")(inputs), include_top=True)
        load_torch_checkpoint(model, weights.checkpoint)
        probabilities = model.predict(load(files, size), batch_size=args.batch_size, verbose=0)
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        hit1 = sum(int(row[0]) in FAMILIES[label] for row, label in zip(top5, labels, strict=True))
        hit5 = sum(any(int(c) in FAMILIES[label] for c in row)
                   for row, label in zip(top5, labels, strict=True))
        ok = hit5 >= TARGET_TOP5 * len(files) and hit1 >= TARGET_TOP1 * len(files)
        rows.append((variant, size, hit1, hit5, ok))
        if not ok:
            failures.append(variant)

    total = len(files)
    print(f"\n{total} photos of {args.photos} ({args.per_class} cats, {args.per_class} dogs)")
    print(f"{'variant':8} {'size':>4} {'top-1':>13} {'top-5':>13}  target (top-1 "
          f">= {TARGET_TOP1:.0%}, top-5 >= {TARGET_TOP5:.0%})")
    for variant, size, hit1, hit5, ok in rows:
        print(f"{variant:8} {size:>4} {hit1:>4}/{total} {hit1 / total:5.1%} "
              f"{hit5:>4}/{total} {hit5 / total:5.1%}  {'met' if ok else 'MISSED'}")

    # -- throughput of the no-top Lite1 features model, float32 -----------------------------------
    base = get_base("efficientnet_lite1")
    size, count = base.default_image_size, args.speed_images
    features = build_features_model(base, resolve_weights("imagenet", base, size), size)
    per_class = -(-count // 2)
    speed_files = [p for label in FAMILIES for p in photos(args.photos, label, per_class)][:count]
    images = load(speed_files, size)
    features.predict(images[: args.batch_size], batch_size=args.batch_size, verbose=0)  # warm-up
    start = time.perf_counter()
    out = features.predict(images, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    print(f"\nlite1 features {tuple(out.shape[1:])}, float32, {len(images)} images at {size} px, "
          f"batch {args.batch_size}: {len(images) / seconds:.1f} images/s "
          f"({keras.backend.backend()}, {os.cpu_count()} CPUs visible)")

    if failures:
        print(f"target missed by {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
