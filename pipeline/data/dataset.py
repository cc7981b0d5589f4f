"""tf.data input from a prepared dataset: verify, decode, resize, cache, shuffle, batch, prefetch.

Images come out as float32 RGB in 0..255, shape (batch, size, size, 3); every model
in this package starts with its own rescaling or preprocessing layer, so a saved
model takes the same raw images. Labels are float (batch, 1) for two classes
(sigmoid output) and int (batch,) for more (softmax output).

The files are the ones the manifest lists, checked against it first (sizes and times,
``verify_dataset``): a photo replaced or deleted after ``data prepare`` is named before
any training, never trained on silently. A file TensorFlow cannot decode fails with its
path in the message: at once here for a split kept in memory (decoded while loading), or
as an ``InvalidArgumentError`` from the dataset that ``undecodable_image`` turns into a
PipelineError (``naming_undecodable_images`` around a fit does that).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.data.defaults import DEFAULT_SEED
from pipeline.data.manifest import (
    REDO_HINT,
    SPLITS,
    class_names,
    require_prepared,
    verify_dataset,
)
from pipeline.errors import PipelineError
from pipeline.system.memory import available_memory_bytes

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
    seed: int = DEFAULT_SEED,
    cache: bool = True,
) -> SplitData:
    """Build the input pipeline of one split of a prepared dataset.

    Decoded, resized images are cached in memory when they fit (decoded here, once, so
    epochs skip JPEG decoding and a bad file is named before training); shuffling happens
    after the cache so every epoch sees a new order (without a cache: file names are
    shuffled before decoding, so memory holds batches, not the split); prefetching lets
    decoding overlap the training step.
    """
    if split not in SPLITS:
        raise PipelineError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if image_size < 1 or batch_size < 1:
        raise PipelineError("`image_size` and `batch_size` must be positive")
    dataset_dir = Path(dataset_dir)
    manifest = require_prepared(dataset_dir)
    verify_dataset(dataset_dir)  # a changed or missing photo: named now, not mid-epoch
    names = tuple(class_names(manifest))
    file_paths, labels = _listed(dataset_dir, manifest, split)
    if not file_paths:
        raise PipelineError(
            f"{dataset_dir / split}: no images; re-run `python cli.py data prepare`"
        )

    count = len(file_paths)
    budget = CACHE_MEMORY_SHARE * available_memory_bytes()
    cached = cache and decoded_bytes(count, image_size) < budget
    dataset = tf.data.Dataset.from_tensor_slices(([str(path) for path in file_paths], labels))
    if shuffle and not cached:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = decode_images(dataset, image_size)
    if cached:
        dataset = dataset.cache()
        with naming_undecodable_images():
            for _ in dataset:  # fill the cache now: later iterations share it
                pass
        if shuffle:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return SplitData(dataset=dataset, file_paths=file_paths, class_names=names, cached=cached)


def _listed(
    dataset_dir: Path, manifest: dict[str, Any], split: str
) -> tuple[tuple[Path, ...], np.ndarray]:
    """The split's files as the manifest lists them (class by class, sorted) and their labels."""
    names = class_names(manifest)
    paths: list[Path] = []
    indices: list[int] = []
    for index, name in enumerate(names):
        files = sorted(entry["name"] for entry in manifest["splits"][split][name])
        paths += [dataset_dir / split / name / file for file in files]
        indices += [index] * len(files)
    if label_mode(len(names)) == "binary":
        return tuple(paths), np.asarray(indices, np.float32).reshape(-1, 1)
    return tuple(paths), np.asarray(indices, np.int32)


# -- decoding, with the name of a file that cannot be decoded --------------------------------------

_UNDECODABLE = "cannot read or decode image"
_UNDECODABLE_PATTERN = re.compile(re.escape(f"[{_UNDECODABLE}] [") + r"(.*?)\]")


def decode_images(dataset: tf.data.Dataset, image_size: int) -> tf.data.Dataset:
    """(path, label) elements to (image, label), images as ``image_dataset_from_directory``.

    A file that cannot be read or decoded stops the iteration with an InvalidArgumentError
    whose message holds its path (``undecodable_image`` reads it back): each file is decoded
    in a one-element dataset whose errors are caught and flagged, never silently dropped.
    """
    shape = (image_size, image_size, 3)

    def decode(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, shape[:2], method="bilinear")
        image.set_shape(shape)
        return image, tf.constant(True)

    def decoded_or_flagged(path: tf.Tensor, label: tf.Tensor) -> tf.data.Dataset:
        one = tf.data.Dataset.from_tensors(path).map(decode).ignore_errors()
        flagged = tf.data.Dataset.from_tensors((tf.zeros(shape, tf.float32), tf.constant(False)))
        return one.concatenate(flagged).take(1).map(lambda image, ok: (image, label, ok, path))

    def require_decoded(image, label, ok, path):
        with tf.control_dependencies([tf.debugging.Assert(ok, [_UNDECODABLE, path])]):
            return tf.identity(image), label

    images = dataset.interleave(decoded_or_flagged, num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=True).map(require_decoded)
    # Interleaving hides the length; Keras needs it for its progress bar and epoch size.
    return images.apply(tf.data.experimental.assert_cardinality(dataset.cardinality()))


def undecodable_image(error: BaseException) -> PipelineError | None:
    """The PipelineError naming the file behind ``error`` if it is a decoding failure of ours."""
    match = _UNDECODABLE_PATTERN.search(str(getattr(error, "message", error)))
    if match is None:
        return None
    path = match.group(1)
    return PipelineError(
        f"{path}: {_UNDECODABLE}; remove it from the source photos and {REDO_HINT}"
    )


@contextlib.contextmanager
def naming_undecodable_images() -> Iterator[None]:
    """Turn a decoding failure of ``load_split``'s datasets into a PipelineError naming the file."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        problem = undecodable_image(error)
        if problem is None:
            raise
        raise problem from None
