"""Report: fine-tuning on cached augmented views against fast extraction, per conv base.

For each base (VGG16 at 150 px, then EfficientNet-Lite1 at its 240 px; VGG16 at 224 px with
``--vgg16-224``): fast extraction (features cached, head on arrays), then fine-tuning of the
base's top block (or what ``--unfreeze`` names) on ``--views`` cached augmented views of the
frozen part (the best epoch by validation loss is kept; every choice is made on validation,
never on test), test accuracy without and with flip test-time augmentation, one epoch's
training steps on cached views against the same steps under augmentation through the full model
(timed side by side over ``--steps`` steps, scaled to an epoch), and the whole recipe's time
against fast extraction plus today's cached-top fine-tuning (measured with ``--baseline``;
otherwise estimated as extraction plus the same number of cached epochs, which cost what an
epoch on views costs: same tensors, same layers).

Targets: VGG16 150 px test accuracy >= 0.7 points above fast extraction and >= 97.8 %;
224 px >= 98.5 %; an epoch on views >= 3x faster than one through the full model; the
whole recipe <= 3x extraction + cached-top fine-tuning. Exit status 1 if one is missed.

    .venv/bin/python bench/finetune_report.py [--data DIR] [--views 8] [--epochs 10]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from common import CANNOT_RUN, dataset_missing, dataset_parser, exit_status, verdict


def parse_args(argv: list[str] | None = None):
    parser = dataset_parser(__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models/finetune-report"))
    parser.add_argument("--features-dir", type=Path, default=Path("models/features"))
    parser.add_argument("--bases", default="vgg16,efficientnet_lite1",
                        help="comma-separated bases, each optionally BASE:SIZE (vgg16:224)")
    parser.add_argument("--vgg16-224", action="store_true", help="also VGG16 at 224 px (slow)")
    parser.add_argument("--unfreeze", default="top",
                        help="what of the base trains (finetune --unfreeze): top, all, N, LAYER")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--schedule", default="constant")
    parser.add_argument("--warmup-epochs", type=float, default=0.0)
    parser.add_argument("--ema", type=float, default=None,
                        help="weight averaging momentum per step (finetune --ema; default none)")
    parser.add_argument("--tta", type=int, default=2, help="test-time views (2: image + flip)")
    parser.add_argument("--steps", type=int, default=8, help="steps timed per epoch kind")
    parser.add_argument("--precision", default="mixed", help="VGG16's (views, training)")
    parser.add_argument("--lite-precision", default="float32")
    parser.add_argument("--baseline", action="store_true",
                        help="also run today's cached-top fine-tuning (no views) for its time")
    return parser.parse_args(argv)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def metrics_of(run) -> dict:
    return json.loads(run.file("metrics.json").read_text())


def epoch_times(extract_run, augmentation, options, steps: int, views_path: Path,
                unfreeze_spec: str = "top") -> dict:
    """Seconds per training epoch: cached views vs augmentation through the full model."""
    from pipeline.cache.views import ViewBatches
    from pipeline.data.dataset import load_split
    from pipeline.models.classifier import compile_classifier
    from pipeline.models.transfer import replace_augmentation, unfreeze
    from pipeline.training.loop import augmentation_layer
    from pipeline.training.precision import precision_policy
    from pipeline.workflows.finetune.cached_top import cached_top_split
    from pipeline.workflows.finetune.workflow import load_image_model, open_extract_run

    source = open_extract_run(extract_run.path)
    batch = options.batch_size
    data = load_split(source.data_dir, "train", source.record.image_size, batch, shuffle=True,
                      seed=0)
    epoch_steps = -(-data.count // batch)
    with precision_policy(options.precision) as policy:
        layer = augmentation_layer(augmentation, data.dataset.take(4), options.seed)
        full = replace_augmentation(load_image_model(source), layer, policy)
        unfreeze(full, source.base, unfreeze_spec)
        compile_classifier(full, source.num_classes, options.optimizer, options.learning_rate,
                           ema_momentum=options.ema_momentum)
        batches = [(x.numpy(), y.numpy()) for x, y in data.dataset.take(steps + 1)]
        full.train_on_batch(*batches[0])  # warm-up: tracing
        started = time.perf_counter()
        for x, y in batches[1:]:
            full.train_on_batch(x, y)
        full_step = (time.perf_counter() - started) / steps

        plain = replace_augmentation(load_image_model(source), None, policy)
        unfreeze(plain, source.base, unfreeze_spec)
        _, top = cached_top_split(plain)
        compile_classifier(top, source.num_classes, options.optimizer, options.learning_rate,
                           ema_momentum=options.ema_momentum)
        cached = _open_views(views_path)
        train = ViewBatches(cached, batch, seed=0)
        top.train_on_batch(*train[0])
        started = time.perf_counter()
        for index in range(1, steps + 1):
            x, y = train[index % len(train)]
            top.train_on_batch(x, y)
        view_step = (time.perf_counter() - started) / steps
    return {"steps_per_epoch": epoch_steps, "full_epoch_s": full_step * epoch_steps,
            "views_epoch_s": view_step * epoch_steps, "ratio": full_step / view_step}


def _open_views(path: Path):
    """The views at ``path`` as ``CachedViews`` (read-only memory maps)."""
    import numpy as np

    from pipeline.cache.views import CachedViews, ViewsKey

    meta = json.loads((path / "metadata.json").read_text())
    arrays = [np.load(path / f"view-{v:03d}.npy", mmap_mode="r") for v in meta["views"]]
    return CachedViews(arrays, np.load(path / "labels.npy", mmap_mode="r"), path,
                       ViewsKey(**meta["key"]), 0)


def report_base(args, base: str, size: int | None, precision: str) -> dict:
    """Extraction, fine-tuning on views, TTA and timings for one base; returns the row."""
    from pipeline.evaluation.evaluate import evaluate_run
    from pipeline.models.schedules import ScheduleOptions
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.extract.workflow import ExtractConfig, run_extract
    from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

    label = f"{base}-{size or 'default'}"
    common = dict(models_dir=args.models_dir, features_dir=args.features_dir)
    extract, extract_s = timed(run_extract, ExtractConfig(
        data_dir=args.data, base=base, image_size=size, run_name=None,
        training=TrainingOptions(precision=precision), **common))
    options = TrainingOptions(epochs=args.epochs, learning_rate=args.lr,
                      precision=precision, ema_momentum=args.ema)
    schedule = ScheduleOptions(args.schedule, args.warmup_epochs)
    tuned, tuned_s = timed(run_finetune, FinetuneConfig(
        source_run=extract.path, unfreeze=args.unfreeze, views=args.views, training=options,
        lr_schedule=schedule, **common))
    record = tuned.record()
    views_s = record.views.compute_seconds if record.views else 0.0
    baseline_s = None
    if args.baseline:
        _, baseline_s = timed(run_finetune, FinetuneConfig(
            source_run=extract.path, unfreeze=args.unfreeze, augment=False, training=options,
            lr_schedule=schedule, **common))
    else:  # same epochs, same tensors and layers: an epoch on views costs a cached epoch
        baseline_s = tuned_s - views_s
    tta = evaluate_run(tuned.path, "test", tta=args.tta).metrics
    times = epoch_times(extract, FinetuneConfig().augmentation, options, args.steps,
                        Path(record.views.path), args.unfreeze)
    row = {
        "base": label, "image_size": extract.record().image_size, "precision": precision,
        "unfreeze": args.unfreeze, "views": args.views, "epochs_run": record.epochs_run,
        "best_epoch": record.best_epoch,
        "extract_val": metrics_of(extract)["validation"]["accuracy"],
        "extract_test": metrics_of(extract)["test"]["accuracy"],
        "finetune_val": metrics_of(tuned)["validation"]["accuracy"],
        "finetune_test": metrics_of(tuned)["test"]["accuracy"],
        "finetune_test_tta": tta["accuracy"], "tta": args.tta,
        "extract_s": extract_s, "views_s": views_s, "finetune_s": tuned_s,
        "baseline_finetune_s": baseline_s, "baseline_measured": bool(args.baseline),
        **times,
        "extract_run": str(extract.path), "finetune_run": str(tuned.path),
    }
    row["recipe_ratio"] = (extract_s + tuned_s) / (extract_s + baseline_s)
    print(json.dumps(row, indent=1), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN
    import os

    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} on {os.cpu_count()} cores (shared)", flush=True)
    print(f"views: finite augmentation, {args.views} cached views per image; schedule "
          f"{args.schedule}, lr {args.lr}, unfreeze {args.unfreeze}, weight averaging "
          f"{args.ema or 'none'}, {args.epochs} epochs, best by validation loss", flush=True)
    plans = []
    for entry in args.bases.split(","):
        base, _, size = entry.partition(":")  # "vgg16:224": another size than the base's own
        precision = args.precision if base.startswith("vgg") else args.lite_precision
        plans.append((base, int(size) if size else None, precision))
    if args.vgg16_224:
        plans.append(("vgg16", 224, args.precision))
    rows = [report_base(args, base, size, precision) for base, size, precision in plans]

    met = []
    print("\n| base | px | views | extract test | finetune val | finetune test | + TTA | "
          "epoch full / views (s) | ratio | recipe / (extract + cached ft) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['base']} | {row['image_size']} | {row['views']} | "
              f"{row['extract_test']:.4f} | {row['finetune_val']:.4f} | "
              f"{row['finetune_test']:.4f} | {row['finetune_test_tta']:.4f} (tta {row['tta']}) | "
              f"{row['full_epoch_s']:.0f} / {row['views_epoch_s']:.0f} | {row['ratio']:.1f}x | "
              f"{row['recipe_ratio']:.2f}x{'' if row['baseline_measured'] else ' (est.)'} |")
        if row["base"].startswith("vgg16"):
            # The issue asks +0.7 points over fast extraction at the book's 150 px only;
            # at 224 px the target is the accuracy alone.
            if row["image_size"] >= 224:
                ok = row["finetune_test"] >= 0.985
                print(f"{row['base']}: test {row['finetune_test']:.4f} >= 0.985: {verdict(ok)}")
            else:
                ok = (row["finetune_test"] >= 0.978
                      and row["finetune_test"] >= row["extract_test"] + 0.007)
                print(f"{row['base']}: test {row['finetune_test']:.4f} >= 0.978 and >= "
                      f"extraction + 0.007 ({row['extract_test'] + 0.007:.4f}): {verdict(ok)}")
            met.append(ok)
        met.append(row["ratio"] >= 3)
        met.append(row["recipe_ratio"] <= 3)
        print(f"{row['base']}: epoch ratio {row['ratio']:.1f}x >= 3: {verdict(row['ratio'] >= 3)};"
              f" recipe {row['recipe_ratio']:.2f}x <= 3: {verdict(row['recipe_ratio'] <= 3)}")
    if not any(base == "vgg16" and size == 224 for base, size, _ in plans):
        print("VGG16 at 224 px: skipped (pass --vgg16-224; about 2.2x the 150 px cost)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return exit_status(*met)


if __name__ == "__main__":
    sys.exit(main())
