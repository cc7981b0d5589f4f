"""Feature cache: what a frozen conv base makes of each split, computed once, kept as NumPy arrays.

Layout of ``models/features/<base>-<layer>-<size>px-<split>-<key>/``::

    features.npy    (count, H, W, C) float32, the layer's output per image
    labels.npy      (count, 1) float32 for two classes, (count,) int32 for more
    metadata.json   the key below, shapes, sha256 of both arrays, how it was made; written last
    verified.json   when the arrays were last checked against those sha256 (size and times)

The key is a sha256 of everything the numbers depend on: conv base, layer, the exact
weights that compute that layer (a hash of the arrays, so "imagenet", "lpips", a file and
a seeded random init are all told apart), image size, preprocessing, the compute
precision (``float32`` or a mixed policy: features are stored as float32 either way, but a
float32 and a mixed cache never mix), the dataset's manifest checksum (callers verify the
files against the manifest first, so the checksum stands for the files), the split and
this format's version. A different input gives a different folder; a folder whose
metadata does not match its key, or whose arrays are damaged or fail their checksum, is
recomputed with a warning, never used.

Writing: rows go into a hidden work folder in parts (``feature_parts.py``) with ordinary
writes, so an interrupted run is continued by the next one from its last complete part,
memory stays bounded, and a full disk is an error message, not a crash; the folder is
renamed into place when complete. Reading: ``NpyRows`` reads the rows each batch needs,
so a process's memory does not grow with the size of the features it trains on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from pipeline.cache import parts as feature_parts
from pipeline.cache.keys import FolderPerKey, key_digest
from pipeline.cache.parts import PartWriter
from pipeline.data.dataset import naming_undecodable_images
from pipeline.data.defaults import DEFAULT_SEED
from pipeline.devices.strategies import active_distribution
from pipeline.errors import PipelineError
from pipeline.models.folding import inference_model
from pipeline.runs.folder import FeatureRecord
from pipeline.system import interrupts
from pipeline.system.atomic import write_json
from pipeline.system.npy_files import NpyRows, file_sha256

FORMAT_VERSION = 3  # 3: sha256 of the arrays in the metadata
FEATURES_FILE = "features.npy"
LABELS_FILE = "labels.npy"
METADATA_FILE = "metadata.json"
VERIFIED_FILE = "verified.json"
FEATURE_DTYPE = np.float32

# ``fill(writer)`` appends every row: ``writer.append(features, labels)`` batch by batch,
# skipping the first ``writer.start`` inputs (written by an earlier, interrupted run).
Filler = Callable[[PartWriter], None]
Rows = np.ndarray | NpyRows  # an array, or rows read from disk when indexed


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
        return key_digest(self)

    def folder_name(self) -> str:
        return f"{self.base}-{self.layer}-{self.image_size}px-{self.split}-{self.digest()[:16]}"


@dataclass(frozen=True)
class CachedFeatures:
    """One split's features and labels (read from disk as indexed) and where they live."""

    features: Rows
    labels: Rows
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


class FeatureCache(FolderPerKey):
    """A folder of feature sets, one sub-folder per key."""

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
        """Make the entry for ``key``: ``fill(writer)`` appends every row (see ``Filler``).

        Continues an earlier, interrupted computation of the same entry from its last
        complete part. A full disk removes the parts and raises a PipelineError.
        """
        folder = self.folder(key)
        self.root.mkdir(parents=True, exist_ok=True)
        feature_parts.remove_leftovers(self.root)
        work = feature_parts.work_folder(folder)
        row_bytes = int(np.prod(feature_shape, dtype=np.int64)) * np.dtype(FEATURE_DTYPE).itemsize
        plan = {"key": key.digest(), "count": int(count),
                "feature_shape": [int(n) for n in feature_shape],
                "feature_dtype": np.dtype(FEATURE_DTYPE).name,
                "label_shape": [int(n) for n in label_shape],
                "label_dtype": np.dtype(label_dtype).name,
                "part_rows": feature_parts.part_rows(row_bytes)}
        try:
            with feature_parts.claimed(work):
                writer = PartWriter(work, plan, feature_parts.resume_point(work, plan))
                try:
                    start = time.perf_counter()
                    with writer.saying_what_a_stop_keeps():
                        fill(writer)
                    seconds = time.perf_counter() - start
                    checksums = writer.finish()
                finally:
                    writer.close()
                write_json(work / METADATA_FILE, {
                    "key": asdict(key),
                    "count": count,
                    "feature_shape": list(feature_shape),
                    "feature_dtype": np.dtype(FEATURE_DTYPE).name,
                    "label_shape": list(label_shape),
                    "label_dtype": np.dtype(label_dtype).name,
                    "sha256": checksums,
                    **(info or {}),
                })
                _record_verified(work, checksums)  # computed while writing: nothing to re-read
                feature_parts.release_for_publishing(work)
            if folder.exists():  # damaged, foreign, or being replaced (``recompute``)
                shutil.rmtree(folder)
            os.replace(work, folder)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            shutil.rmtree(work, ignore_errors=True)
            raise PipelineError(_disk_full(self.root, key, count, row_bytes)) from None
        except feature_parts.Busy:
            raise  # another process's work: not ours to remove
        except PipelineError:  # the data changed under the fill: its parts are worthless
            shutil.rmtree(work, ignore_errors=True)
            raise
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


def _disk_full(root: Path, key: FeatureKey, count: int, row_bytes: int) -> str:
    free = shutil.disk_usage(root).free if root.exists() else 0
    return (f"{root}: the disk is full ({free / 2**20:.0f} MB free) while writing the "
            f"{key.split} features ({count * row_bytes / 2**20:.0f} MB needed); nothing was "
            "kept: free some space or set `features_dir` to a disk with room")


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
        features = NpyRows(folder / FEATURES_FILE)
        labels = NpyRows(folder / LABELS_FILE)
    except (OSError, ValueError) as error:
        raise _Damaged(f"arrays: {error}") from None
    count = meta.get("count")
    expected = (count, *meta.get("feature_shape", []))
    if features.shape != expected or features.dtype != FEATURE_DTYPE:
        raise _Damaged(f"{FEATURES_FILE} is {features.shape} {features.dtype}, expected {expected}")
    if labels.shape != (count, *meta.get("label_shape", [])):
        raise _Damaged(f"{LABELS_FILE} has shape {labels.shape}, expected {count} labels")
    _verify_checksums(folder, meta.get("sha256"))
    return CachedFeatures(features, labels, folder, key, reused)


def _verify_checksums(folder: Path, expected: Any) -> None:
    """Compare each array's sha256 with the one recorded at write time, once per file state.

    Hashing costs about a second per GB, so a match is recorded in ``verified.json`` with
    the file's size, modification and change times; it is hashed again only when one of
    them changes (a replaced, edited or copied file). A read-only cache is hashed each time.
    """
    names = (FEATURES_FILE, LABELS_FILE)
    if not isinstance(expected, dict) or not all(isinstance(expected.get(n), str) for n in names):
        raise _Damaged(f"{METADATA_FILE} records no checksums")
    try:
        stamps = json.loads((folder / VERIFIED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamps = {}
    stamps = stamps if isinstance(stamps, dict) else {}
    fresh = {}
    for name in names:
        stamp = {"sha256": expected[name], "stat": _file_state(folder / name)}
        if stamps.get(name) != stamp and file_sha256(folder / name) != expected[name]:
            raise _Damaged(f"{name} does not match the checksum recorded when it was written")
        fresh[name] = stamp
    if fresh != stamps:
        with contextlib.suppress(OSError):
            write_json(folder / VERIFIED_FILE, fresh)


def _record_verified(folder: Path, checksums: dict[str, str]) -> None:
    write_json(folder / VERIFIED_FILE, {
        name: {"sha256": checksums[name], "stat": _file_state(folder / name)}
        for name in (FEATURES_FILE, LABELS_FILE)
    })


def _file_state(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


# -- filling from a model --------------------------------------------------------------------------


def fill_from_model(
    model: keras.Model, batches: Iterable[tuple[Any, Any]], label: str = "", verbose: int = 1
) -> Filler:
    """A ``fill`` that runs ``model`` (inference mode) over ``batches`` of (inputs, labels).

    Batches are written as they come, so only one batch of outputs is in memory. Inputs an
    earlier, interrupted run already computed (``writer.start``) are read but not run.
    """

    def fill(writer: PartWriter) -> None:
        if verbose and label:
            print(label + (f" (continuing from {writer.start})" if writer.start else ""))
        progress = keras.utils.Progbar(writer.count, verbose=verbose, unit_name="image")
        running = inference_model(model)
        seen = 0
        with naming_undecodable_images():  # a bad photo: its name, and no parts kept
            for inputs, targets in batches:
                targets = np.asarray(targets)
                first, seen = seen, seen + len(targets)
                if seen <= writer.start:
                    continue
                # Stored as float32 whatever the compute precision (bfloat16, float16).
                outputs = np.asarray(predict_batch(running, inputs), dtype=FEATURE_DTYPE)
                skip = max(0, writer.start - first)
                writer.append(outputs[skip:], targets[skip:])
                progress.update(seen)
        if seen != writer.count:
            raise PipelineError(f"{seen} inputs where {writer.count} were expected; "
                                "the data changed")

    return fill


def predict_batch(model: keras.Model, inputs: Any) -> Any:
    """``model``'s outputs on one batch, the same on one device or split across replicas.

    Under a strategy of several replicas (``pipeline.devices.strategies.active_distribution``),
    ``predict_on_batch`` would give every replica the whole batch; ``distributed_predict``
    splits it and puts the outputs back in input order.
    """
    interrupts.raise_swallowed()  # every batch loop passes here: a stop no library may lose
    distribution = active_distribution()
    if distribution is None or distribution.replicas == 1:
        return model.predict_on_batch(inputs)
    import tensorflow as tf

    from pipeline.devices.distribute import distributed_predict

    return distributed_predict(model, tf.data.Dataset.from_tensors(inputs),
                               distribution.strategy)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of (features, labels) read from arrays or ``NpyRows``, reshuffled every epoch.

    Each batch reads only its own rows (sorted, so runs of neighbours are one read), so
    memory holds a batch, not the features of the whole split.
    """

    def __init__(
        self,
        features: Rows,
        labels: Rows,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = DEFAULT_SEED,
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
            rows = np.sort(rows)  # sequential reads from disk; the batch is a set
        return np.asarray(self.features[rows]), np.asarray(self.labels[rows])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)
