"""A dataset's default name, and the line every command prints about the dataset it used.

Kaggle's cats and dogs keep the book's name, ``cats_and_dogs_small``; any other source is
named after its folder (``~/photos/oxford-flowers-17`` -> ``oxford-flowers-17``), or after the
folder above when it is called like a split (``~/flowers/train`` -> ``flowers``), made a plain
folder name (``My Photos`` -> ``My_Photos``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.data.defaults import DATASET_NAME
from pipeline.data.layouts import SPLIT_FOLDERS, SourceScan, portable_name
from pipeline.data.manifest import SPLITS
from pipeline.data.splits import CLASSIC_LAYOUTS

_NOT_PLAIN = re.compile(r"[^A-Za-z0-9_.-]+")
_SPLIT_NAMES = frozenset({*SPLIT_FOLDERS, "test1"})


def default_dataset_name(scan: SourceScan) -> str:
    """The name a dataset of ``scan`` gets when none is given (see the module's docstring)."""
    if scan.layout in CLASSIC_LAYOUTS:
        return DATASET_NAME
    folder = Path(os.path.normpath(Path(scan.source).expanduser().absolute()))
    if folder.name.lower() in _SPLIT_NAMES and folder.parent.name:
        folder = folder.parent
    name = _NOT_PLAIN.sub("_", portable_name(folder.name)).lstrip(".-")[:100].rstrip(".")
    return name or "dataset"


def dataset_line(data_dir: Path, manifest: Mapping[str, Any]) -> str:
    """``data/flowers: 17 classes, 1,360 photos (train 1,088, validation 136, test 136)``."""
    counts = manifest["counts"]
    per_split = {split: sum(counts.get(split, {}).values()) for split in SPLITS}
    splits = ", ".join(f"{split} {count:,}" for split, count in per_split.items())
    classes = len(manifest["classes"])
    return (f"{data_dir}: {classes} class{'es' * (classes != 1)}, "
            f"{sum(per_split.values()):,} photos ({splits})")
