"""Accuracy report: fast feature extraction, then cached fine-tuning, on the real photos.

Runs ``extract`` (default weights, no augmentation) and ``finetune`` (top block unfrozen,
no augmentation, so the cached top) on a prepared dataset, the classic 1000/500/500 split
of Kaggle's dogs-vs-cats by default, and prints a table: test and validation accuracy of
each step's best model and the wall time of each step (for ``extract`` also the time spent
computing features alone, without resolving weights or building models; a second report
reuses them). Targets: extraction at least 95% test accuracy, fine-tuning at least 97%;
the exit status is 1 when one is missed, 2 when the benchmark cannot run.

    .venv/bin/python cli.py data prepare --source ../shared/datasets/dogs-vs-cats/train
    .venv/bin/python bench/accuracy_report.py [--data DIR] [--finetune-epochs 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import CANNOT_RUN, dataset_missing, dataset_parser, exit_status, run_stamp, verdict

TARGETS = {"extract": 0.95, "finetune": 0.97}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = dataset_parser(__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--extract-epochs", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--verbose", type=int, default=2, help="Keras fit verbosity (0, 1, 2)")
    return parser.parse_args(argv)


def features_seconds(record) -> float:
    """Seconds this run spent computing features (the base's output and its split point's)."""
    entries = [*(record.features or {}).values(), *(record.split_features or {}).values()]
    return sum(entry.compute_seconds for entry in entries)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN

    # Through the Python API, as a notebook would.
    from pipeline import ExtractConfig, FinetuneConfig, TrainingOptions
    from pipeline import extract as run_extract
    from pipeline import finetune as run_finetune

    stamp = run_stamp()
    rows = []

    start = time.time()
    extract = run_extract(ExtractConfig(
        data_dir=args.data, models_dir=args.models_dir, run_name=f"report-extract-{stamp}",
        weights=args.weights, image_size=args.image_size,
        training=TrainingOptions(epochs=args.extract_epochs),
    ), verbose=args.verbose)
    wall = time.time() - start
    record = extract.record()
    reused = all(entry.reused for entry in record.features.values())
    # Only the feature computation: weight resolution and model building are not in it.
    features = "reused" if reused else f"{features_seconds(record):.0f} s"
    rows.append(("fast extraction", extract, wall, f"features {features}"))

    start = time.time()
    finetune = run_finetune(FinetuneConfig(
        source_run=extract.path, models_dir=args.models_dir, run_name=f"report-finetune-{stamp}",
        training=TrainingOptions(epochs=args.finetune_epochs),
    ), verbose=args.verbose)
    wall = time.time() - start
    cached = finetune.record().cached_top
    rows.append(("fine-tuning (cached top)", finetune, wall,
                 f"top trained on {cached.split_layer if cached else 'images (no cached top)'}"))

    print(f"\ndataset {args.data}, weights: {record.weights.detail}")
    print(f"image size {args.image_size}, extract {args.extract_epochs} epochs, "
          f"finetune {args.finetune_epochs} epochs\n")
    header = (f"{'step':26s} {'test acc':>9s} {'val acc':>8s} {'target':>7s} "
              f"{'wall time':>10s}  notes")
    print(header)
    print("-" * len(header))
    met = []
    for (label, run, seconds, note), target in zip(rows, TARGETS.values(), strict=True):
        metrics = run.read_metrics()
        test = metrics.get("test", {}).get("accuracy", float("nan"))
        val = metrics.get("validation", {}).get("accuracy", float("nan"))
        met.append(test >= target)  # NaN (no test split) is never met
        print(f"{label:26s} {test:9.4f} {val:8.4f} {target:7.2f} {seconds / 60:8.1f} min  "
              f"{verdict(met[-1])}; {note}; {run.path}")
    return exit_status(*met)


if __name__ == "__main__":
    sys.exit(main())
