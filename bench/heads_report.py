"""Heads report: each classifier head on the same cached conv-base features, side by side.

Runs fast feature extraction (default weights, no augmentation) once per head on a
prepared dataset — the features are computed once and reused — and prints, per head, its
parameter count, validation and test accuracy of its best model and the wall time.

    .venv/bin/python cli.py data prepare --source ../shared/datasets/dogs-vs-cats/train
    .venv/bin/python bench/heads_report.py [--data DIR] [--heads flatten,gap,spp,netvlad,local]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import CANNOT_RUN, dataset_missing, dataset_parser, run_stamp


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = dataset_parser(__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--heads", default="flatten,gap,spp,netvlad,local")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=150)
    return parser.parse_args(argv)


def head_parameters(run) -> int:
    """Parameters of the head alone: the saved model's minus the frozen conv base's."""
    from pipeline.models.heads import is_head_layer
    from pipeline.models.saving import load_model

    model = load_model(run.model_path("best"))
    return sum(layer.count_params() for layer in model.layers if is_head_layer(layer))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN

    from pipeline import ExtractConfig, TrainingOptions
    from pipeline import extract as run_extract

    rows: list[tuple] = []  # one per head: name, parameters, accuracies, seconds
    stamp = run_stamp()
    for head in args.heads.split(","):
        start = time.time()
        run = run_extract(ExtractConfig(
            data_dir=args.data, models_dir=args.models_dir, run_name=f"heads-{head}-{stamp}",
            head=head, image_size=args.image_size,
            training=TrainingOptions(epochs=args.epochs),
        ), verbose=0)
        metrics = run.read_metrics()
        rows.append((head, head_parameters(run), metrics["validation"]["accuracy"],
                     metrics["test"]["accuracy"], time.time() - start, run.name))
        print(f"done: {head}", flush=True)

    print(f"\ndataset {args.data}, image size {args.image_size}, {args.epochs} epochs per head\n")
    print(f"{'head':10} {'parameters':>11} {'val acc':>8} {'test acc':>9} {'wall s':>7}  run")
    print("-" * 70)
    for head, params, val, test, seconds, name in rows:
        print(f"{head:10} {params:>11,} {val:>8.4f} {test:>9.4f} {seconds:>7.0f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
