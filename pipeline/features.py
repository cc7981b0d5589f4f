"""Feature cache: what a frozen conv base makes of each split, computed once, kept as NumPy arrays.

Layout of ``models/features/<base>-<layer>-<size>px-<split>-<key>/``::

    features.npy    (count, H, W, C) float32, the layer's output per image
    labels.npy      (count, 1) float32 for two classes, (count,) int32 for more
    metadata.json   the key below, shapes, class names, how it was made; written last

The key is a sha256 of everything the numbers depend on: conv base, layer, the exact
weights that compute that layer (a hash of the arrays, so "imagenet", "lpips", a file and
a seeded random init are all told apart), image size, preprocessing, the compute
precision (``float32`` or a mixed policy: features are stored as float32 either way, but a
float32 and a mixed cache never mix), the dataset's manifest checksum, the split and this
format's version. A different input gives a
different folder; a folder whose metadata does not match its key, or whose arrays are
damaged, is recomputed with a warning, never used. Arrays are written through
``numpy.lib.format.open_memmap`` into a temporary folder that is renamed into place at
the end, so memory stays bounded and an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.lib.format import open_memmap

from pipeline.atomic import write_json
from pipeline.errors import PipelineError
from pipeline.runs import FeatureRecord

FORMAT_VERSION = 2
FEATURES_FILE = "features.npy"
LABELS_FILE = "labels.npy"
METADATA_FILE = "metadata.json"
FEATURE_DTYPE = np.float32

Filler = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class FeatureKey:
    """Everything cached features depend on."""

    base: str
    layer: str
    weights: str  # sha256 of the weight arrays that compute ``layer``
    image_size: int
    preprocessing: str
    dataset: str  # manifest checksum
    split: str
    precision: str = "float32"  # the dtype policy that computed them
    format: int = FORMAT_VERSION

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def folder_name(self) -> str:
        return f"{self.base}-{self.layer}-{self.image_size}px-{self.split}-{self.digest()[:16]}"


@dataclass(frozen=True)
class CachedFeatures:
    """One split's features and labels (memory-mapped, read-only) and where they live."""

    features: np.ndarray
    labels: np.ndarray
    path: Path
    key: FeatureKey
    reused: bool
    compute_seconds: float = 0.0  # time spent computing them now (0 when reused)

    @property
    def count(self) -> int:
        return int(self.features.shape[0])

    def describe(self) -> FeatureRecord:
        """What a run records about the features it used."""
        return FeatureRecord(path=str(self.path), key=self.key.digest(), layer=self.key.layer,
                             shape=list(self.features.shape), reused=self.reused,
                             compute_seconds=round(self.compute_seconds, 3))


def weights_fingerprint(model: keras.Model) -> str:
    """sha256 of every weight array of ``model``, in order (shapes and dtypes included)."""
    digest = hashlib.sha256()
    for variable in model.weights:
        array = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{array.dtype}{array.shape}".encode("ascii"))
        digest.update(array.tobytes())
    return digest.hexdigest()


class FeatureCache:
    """A folder of feature sets, one sub-folder per key."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def folder(self, key: FeatureKey) -> Path:
        return self.root / key.folder_name()

    def load(
        self, key: FeatureKey, *, strict: bool = False, warn: bool = True
    ) -> CachedFeatures | None:
        """The cached features for ``key``; None if absent, or damaged/foreign (with a warning).

        ``strict`` turns a damaged or foreign entry into a PipelineError instead; ``warn``
        False keeps quiet about it (for a look-up whose miss costs nothing).
        """
        folder = self.folder(key)
        if not folder.exists():
            if strict:
                raise PipelineError(f"{folder}: no cached features there")
            return None
        try:
            return _read_entry(folder, key)
        except _Damaged as problem:
            message = f"feature cache {folder} is unusable ({problem})"
            if strict:
                raise PipelineError(f"{message}; delete it or set `recompute`") from None
            if warn:
                print(f"warning: {message}; recomputing it", file=sys.stderr)
            return None

    def write(
        self,
        key: FeatureKey,
        *,
        count: int,
        feature_shape: tuple[int, ...],
        label_shape: tuple[int, ...],
        label_dtype: str,
        fill: Filler,
        info: dict[str, Any] | None = None,
    ) -> CachedFeatures:
        """Make the entry for ``key``: ``fill(features, labels)`` fills memory-mapped arrays."""
        folder = self.folder(key)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=self.root))
        try:
            features = open_memmap(tmp / FEATURES_FILE, mode="w+", dtype=FEATURE_DTYPE,
                                   shape=(count, *feature_shape))
            labels = open_memmap(tmp / LABELS_FILE, mode="w+", dtype=label_dtype,
                                 shape=(count, *label_shape))
            start = time.perf_counter()
            fill(features, labels)
            seconds = time.perf_counter() - start
            features.flush()
            labels.flush()
            del features, labels  # close the maps before the folder moves
            write_json(tmp / METADATA_FILE, {
                "key": asdict(key),
                "count": count,
                "feature_shape": list(feature_shape),
                "feature_dtype": np.dtype(FEATURE_DTYPE).name,
                "label_shape": list(label_shape),
                "label_dtype": np.dtype(label_dtype).name,
                **(info or {}),
            })
            if folder.exists():  # damaged, foreign, or being replaced (``recompute``)
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp)
        return dataclasses.replace(_read_entry(folder, key, reused=False),
                                   compute_seconds=seconds)

    def get(self, key: FeatureKey, *, recompute: bool = False, **entry: Any) -> CachedFeatures:
        """Reuse the entry for ``key`` if it is sound and matches, else compute it.

        ``entry``: ``count``, shapes, ``fill`` ... as ``write`` takes them.
        """
        if not recompute:
            cached = self.load(key)
            if cached is not None and cached.count == entry["count"]:
                return cached
        return self.write(key, **entry)


class _Damaged(Exception):
    """A cache entry that cannot be trusted; the message says why."""


def _read_entry(folder: Path, key: FeatureKey, reused: bool = True) -> CachedFeatures:
    try:
        meta = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _Damaged(f"no {METADATA_FILE}: it was never finished") from None
    except (OSError, ValueError) as error:
        raise _Damaged(f"{METADATA_FILE}: {error}") from None
    if not isinstance(meta, dict) or meta.get("key") != asdict(key):
        raise _Damaged(f"{METADATA_FILE} describes other features than the ones asked for")
    try:
        features = np.load(folder / FEATURES_FILE, mmap_mode="r")
        labels = np.load(folder / LABELS_FILE, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise _Damaged(f"arrays: {error}") from None
    count = meta.get("count")
    expected = (count, *meta.get("feature_shape", []))
    if features.shape != expected or features.dtype != FEATURE_DTYPE:
        raise _Damaged(f"{FEATURES_FILE} is {features.shape} {features.dtype}, expected {expected}")
    if labels.shape != (count, *meta.get("label_shape", [])):
        raise _Damaged(f"{LABELS_FILE} has shape {labels.shape}, expected {count} labels")
    return CachedFeatures(features, labels, folder, key, reused)


# -- filling from a model --------------------------------------------------------------------------


def fill_from_model(
    model: keras.Model, batches: Iterable[tuple[Any, Any]], label: str = "", verbose: int = 1
) -> Filler:
    """A ``fill`` that runs ``model`` (inference mode) over ``batches`` of (inputs, labels).

    Batches are written as they come, so only one batch of outputs is in memory.
    """

    def fill(features: np.ndarray, labels: np.ndarray) -> None:
        count = features.shape[0]
        if verbose and label:
            print(label)
        progress = keras.utils.Progbar(count, verbose=verbose, unit_name="image")
        offset = 0
        for inputs, targets in batches:
            # Stored as float32 whatever the compute precision (bfloat16, float16).
            outputs = np.asarray(model.predict_on_batch(inputs), dtype=FEATURE_DTYPE)
            end = offset + outputs.shape[0]
            if end > count:
                raise PipelineError(f"more inputs than the {count} expected; the data changed")
            features[offset:end] = outputs
            labels[offset:end] = np.asarray(targets).reshape(labels[offset:end].shape)
            offset = end
            progress.update(offset)
        if offset != count:
            raise PipelineError(f"{offset} inputs where {count} were expected; the data changed")

    return fill


class ArrayBatches(keras.utils.PyDataset):
    """Batches of (features, labels) read from (memory-mapped) arrays, reshuffled every epoch."""

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 1337,
    ) -> None:
        super().__init__()
        self.features, self.labels = features, labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(features))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return math.ceil(len(self.features) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.shuffle:
            rows = np.sort(rows)  # sequential reads from the memory map; the batch is a set
        return np.asarray(self.features[rows]), np.asarray(self.labels[rows])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)
