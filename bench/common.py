"""What the dataset benchmarks share: their command line and a clear skip without photos.

The benchmarks run on a prepared dataset (``python cli.py data prepare``), by default
``data/cats_and_dogs_small`` or the folder in ``$BENCH_DATASET``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, when run as a script

DATASET_ENV = "BENCH_DATASET"
DEFAULT_DATASET = Path("data/cats_and_dogs_small")


def dataset_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by ``doc``'s first paragraph, with ``--data``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get(DATASET_ENV, DEFAULT_DATASET)),
                        help=f"prepared dataset (default: ${DATASET_ENV}, else {DEFAULT_DATASET})")
    return parser


def dataset_missing(path: Path) -> bool:
    """True, after saying so, when ``path`` holds no prepared dataset."""
    if (Path(path) / "manifest.json").is_file():
        return False
    print(f"skipped: prepared dataset {path} not found (prepare one with "
          f"`python cli.py data prepare --source PHOTOS`, or set {DATASET_ENV})")
    return True
