"""tf.data input from a prepared dataset: decode, resize, cache, shuffle, batch, prefetch.

Images come out as float32 RGB in 0..255, shape (batch, size, size, 3); every model
in this package starts with its own rescaling or preprocessing layer, so a saved
model takes the same raw images. Labels are float (batch, 1) for two classes
(sigmoid output) and int (batch,) for more (softmax output).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from pipeline.data.manifest import SPLITS, class_names, require_prepared
from pipeline.errors import PipelineError
from pipeline.memory import available_memory_bytes

# Decoded images may take at most this share of the available memory before we stop caching them.
CACHE_MEMORY_SHARE = 0.3


@dataclass(frozen=True)
class SplitData:
    """One split as a ready-to-train dataset, with what a caller needs to know about it."""

    dataset: tf.data.Dataset
    file_paths: tuple[Path, ...]  # in the order the dataset yields them (shuffled: before)
    class_names: tuple[str, ...]
    cached: bool

    @property
    def count(self) -> int:
        return len(self.file_paths)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def label_mode(num_classes: int) -> str:
    """``binary`` labels for two classes, integer labels for more."""
    return "binary" if num_classes == 2 else "int"


def decoded_bytes(count: int, image_size: int) -> int:
    """Bytes of ``count`` decoded float32 RGB images of ``image_size`` squared."""
    return count * image_size * image_size * 3 * 4


def load_split(
    dataset_dir: Path,
    split: str,
    image_size: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 1337,
    cache: bool = True,
) -> SplitData:
    """Build the input pipeline of one split of a prepared dataset.

    Decoded, resized images are cached in memory when they fit (so epochs after the
    first skip JPEG decoding); shuffling happens after the cache so every epoch sees
    a new order; prefetching lets decoding overlap the training step.
    """
    if split not in SPLITS:
        raise PipelineError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if image_size < 1 or batch_size < 1:
        raise PipelineError("`image_size` and `batch_size` must be positive")
    manifest = require_prepared(Path(dataset_dir))
    names = tuple(class_names(manifest))
    split_dir = Path(dataset_dir) / split
    if not split_dir.is_dir() or not any(p.is_file() for p in split_dir.rglob("*")):
        raise PipelineError(f"{split_dir}: no images; re-run `python cli.py data prepare`")

    dataset = keras.utils.image_dataset_from_directory(
        split_dir,
        labels="inferred",
        label_mode=label_mode(len(names)),
        class_names=list(names),
        batch_size=None,
        image_size=(image_size, image_size),
        shuffle=False,
        verbose=False,
    )
    file_paths = tuple(Path(path) for path in dataset.file_paths)
    count = len(file_paths)
    budget = CACHE_MEMORY_SHARE * available_memory_bytes()
    cached = cache and decoded_bytes(count, image_size) < budget
    if cached:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return SplitData(dataset=dataset, file_paths=file_paths, class_names=names, cached=cached)

