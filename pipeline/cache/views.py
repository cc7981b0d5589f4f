"""Cached augmented views: the frozen part of a model applied to V augmented copies of each image.

Why: fine-tuning (or a head) under augmentation normally runs the whole conv base on every
epoch, although only its top trains. The frozen bottom never changes, so its output on a
*fixed* set of augmented copies can be computed once: ``V`` views of every training image,
each view a deterministic function of (augmentation settings, seed, view index). Every
epoch then draws one view per image, and the trainable top sees augmented data at the cost
of an epoch on cached tensors. This approximates augmentation with a finite set of ``V``
draws per image (the exact path, augmentation through the full model, stays available).

Layout of ``<features>/views-<layer>-<key>/``::

    labels.npy        the training labels, in the split's file order
    view-000.npy ...  one view of every image: (count, H, W, C) float32, written atomically
    metadata.json     the key, shapes and the views present; rewritten after each view

Each view is one part: an interrupted computation keeps the views already written and a
later run computes only the missing ones; a run asking for more views than an earlier one
reuses those and adds the rest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.lib.format import open_memmap

from pipeline.cache.features import predict_batch
from pipeline.cache.keys import FolderPerKey, key_digest
from pipeline.cache.parts import claimed
from pipeline.data.defaults import DEFAULT_SEED
from pipeline.devices.strategies import active_distribution
from pipeline.errors import PipelineError
from pipeline.models.folding import inference_model
from pipeline.system import interrupts
from pipeline.system.atomic import write_json

VIEWS_FORMAT = 1
LABELS_FILE = "labels.npy"
METADATA_FILE = "metadata.json"
VIEW_DTYPE = np.float32
ComputeView = Callable[[int, np.ndarray], None]  # (view index, array to fill)


@dataclass(frozen=True)
class ViewsKey:
    """Everything the views depend on beyond the view index."""

    features: str  # digest of the un-augmented features key (base, layer, weights, data ...)
    layer: str  # the layer whose output is cached
    augmentation: str  # the augmentation settings as canonical JSON
    seed: int
    format: int = VIEWS_FORMAT

    @classmethod
    def make(cls, features: str, layer: str, augmentation: dict[str, Any], seed: int) -> ViewsKey:
        return cls(features, layer, json.dumps(augmentation, sort_keys=True), seed)

    def digest(self) -> str:
        return key_digest(self)

    def folder_name(self) -> str:
        return f"views-{self.layer}-{self.digest()[:16]}"


def view_seed(seed: int, view: int) -> int:
    """The seed of one view's augmentation: distinct per view, the same on every run."""
    digest = hashlib.sha256(f"{seed}:{view}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class CachedViews:
    """``views[v]`` is view ``v`` of every training image (memory-mapped, read-only)."""

    views: list[np.ndarray]
    labels: np.ndarray
    path: Path
    key: ViewsKey
    computed: int  # views computed by this call (0: all reused)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "key": self.key.digest(), "layer": self.key.layer,
                "views": len(self.views), "computed": self.computed,
                "shape": list(self.views[0].shape)}


class ViewCache(FolderPerKey):
    """Views of one layer's output under augmentation, kept in a folder per key."""

    def ensure(
        self,
        key: ViewsKey,
        views: int,
        *,
        labels: np.ndarray,
        feature_shape: tuple[int, ...],
        compute: ComputeView,
        verbose: int = 1,
    ) -> CachedViews:
        """Views ``0 .. views-1``: those on disk reused, the missing ones computed one by one."""
        if views < 1:
            raise PipelineError(f"`views` {views}: give at least 1 augmented view per image")
        folder = self.folder(key)
        count = len(labels)
        shape = (count, *feature_shape)
        with claimed(folder, "these augmented views"):
            _remove_leftovers(folder)
            self._write_labels(folder, labels)
            present = self._present(folder, key, shape)
            _check_space(folder, shape, views - len(present & set(range(views))))
            computed = self._compute_missing(folder, key, shape, views, present, compute,
                                             verbose)
        arrays = [np.load(folder / _view_file(view), mmap_mode="r") for view in range(views)]
        label_array = np.load(folder / LABELS_FILE, mmap_mode="r")
        return CachedViews(arrays, label_array, folder, key, computed)

    def _compute_missing(self, folder: Path, key: ViewsKey, shape: tuple[int, ...], views: int,
                         present: set[int], compute: ComputeView, verbose: int) -> int:
        """Compute and write every view of ``0 .. views-1`` not in ``present``; how many."""
        count = shape[0]
        computed = 0
        for view in range(views):
            if view in present:
                continue
            if verbose:
                print(f"augmented view {view + 1}/{views} of {count} images -> {key.layer}")
            with interrupts.saying_what_is_kept(
                    lambda: f"{len(present)} of {views} views kept in {folder}"):
                _write_view(folder / _view_file(view), shape,
                            lambda out, v=view: compute(v, out))
            present.add(view)
            computed += 1
            self._write_metadata(folder, key, shape, present)
        return computed

    def _write_labels(self, folder: Path, labels: np.ndarray) -> None:
        path = folder / LABELS_FILE
        if path.is_file():
            try:
                if np.array_equal(np.load(path), labels):
                    return
            except (OSError, ValueError):
                pass  # damaged: rewritten below, and the views with it
            for stale in folder.glob("view-*.npy"):
                stale.unlink()
        tmp = folder / f".{LABELS_FILE}.tmp"
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(labels))
        os.replace(tmp, path)

    def _present(self, folder: Path, key: ViewsKey, shape: tuple[int, ...]) -> set[int]:
        """Views on disk whose metadata matches the key and whose array has the right shape."""
        try:
            meta = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if meta.get("key") != asdict(key) or meta.get("shape") != list(shape):
            for stale in folder.glob("view-*.npy"):
                stale.unlink()
            return set()
        present = set()
        for view in meta.get("views", []):
            try:
                array = np.load(folder / _view_file(view), mmap_mode="r")
            except (OSError, ValueError):
                continue
            if array.shape == shape and array.dtype == VIEW_DTYPE:
                present.add(int(view))
        return present

    def _write_metadata(self, folder: Path, key: ViewsKey, shape: tuple[int, ...],
                        present: set[int]) -> None:
        write_json(folder / METADATA_FILE, {
            "key": asdict(key), "shape": list(shape), "dtype": np.dtype(VIEW_DTYPE).name,
            "views": sorted(present),
        })


def _view_file(view: int) -> str:
    return f"view-{view:03d}.npy"


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of a computation that crashed: never complete, never read."""
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _check_space(folder: Path, shape: tuple[int, ...], missing: int) -> None:
    """Refuse, before computing anything, views that the disk cannot hold."""
    if missing <= 0:
        return
    needed = missing * math.prod(shape) * np.dtype(VIEW_DTYPE).itemsize
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise PipelineError(
            f"{folder}: {missing} augmented views of {shape[0]} images need "
            f"{needed / 2**30:.2f} GiB and the disk has {free / 2**30:.2f} GiB free; free "
            "some space, give fewer `views`, or put the cache elsewhere (`features_dir`)")


def _write_view(path: Path, shape: tuple[int, ...], fill: Callable[[np.ndarray], None]) -> None:
    """Write one view atomically. Its blocks are reserved before the memory map is filled: a
    full disk is then an ``OSError`` here, not a ``SIGBUS`` when a page is written."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        array = open_memmap(tmp, mode="w+", dtype=VIEW_DTYPE, shape=shape)
        _reserve(tmp)
        fill(array)
        array.flush()
        del array
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _reserve(path: Path) -> None:
    """Allocate every block of ``path`` now (``posix_fallocate``); ENOSPC raises a
    PipelineError that says how much was needed."""
    size = path.stat().st_size
    try:
        with open(path, "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, size)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            return  # a file system that cannot reserve: written as before
        raise PipelineError(f"{path.parent}: the disk is full ({size / 2**20:.1f} MiB needed "
                            "for the next view); free some space and run this again, the views "
                            "already written are kept") from None


def augmented_view_computer(
    bottom: keras.Model,
    batches: Callable[[], Any],
    make_augmentation: Callable[[int], keras.Layer],
    seed: int,
    verbose: int = 1,
) -> ComputeView:
    """A ``compute`` for ``ViewCache.ensure``: augment each batch, then run ``bottom`` on it.

    ``batches()`` yields (images, labels) in a fixed order (the split's file order, as the
    labels); ``make_augmentation(seed)`` builds the augmentation layer for one view's seed.
    """

    # One augmentation layer, one folded model and one traced function for every view: a view
    # differs only by its seed, set into the layer's generators (``_reseed``), rather than
    # folding and tracing the whole model again for every view.
    built: dict[str, Any] = {}

    def compute(view: int, out: np.ndarray) -> None:
        if not built:
            built["augmentation"] = make_augmentation(view_seed(seed, view))
            built["running"] = inference_model(bottom)
            built["graph"] = _one_graph(built["augmentation"], built["running"])
        augmentation, running = built["augmentation"], built["running"]
        augmented_outputs = built["graph"]
        _reseed(augmentation, view_seed(seed, view))
        progress = keras.utils.Progbar(len(out), verbose=verbose, unit_name="image")
        offset = 0
        for images, _ in batches():
            if augmented_outputs is not None:
                interrupts.raise_swallowed()  # as predict_batch does for every batch
                outputs = augmented_outputs(images).numpy()
            else:  # several replicas: augmented here, split across them by predict_batch
                outputs = np.asarray(predict_batch(running, augmentation(images, training=True)))
            end = offset + len(outputs)
            if end > len(out):
                raise PipelineError(f"more images than the {len(out)} expected; the data changed")
            out[offset:end] = outputs
            offset = end
            progress.update(offset)
        if offset != len(out):
            raise PipelineError(f"{offset} images where {len(out)} were expected; the data changed")

    return compute


def _reseed(layer: keras.Layer, seed: int) -> None:
    """Every random generator of ``layer`` (and of its sublayers) set to where a new
    ``SeedGenerator(seed)`` starts, so the layer draws as one built with ``seed`` would."""
    for part in (layer, *getattr(layer, "layers", ())):
        for value in vars(part).values():
            if isinstance(value, keras.random.SeedGenerator):
                value.state.assign(np.array([seed, 0], dtype=value.state.dtype))


def _one_graph(augmentation: keras.Layer, model: keras.Model):
    """Augmentation and ``model`` traced into one TensorFlow function, or None under several
    replicas. Augmenting eagerly, one layer call at a time, took more than half of a
    view's time (EfficientNet-Lite1: views at 42% of extraction's images/s); in one graph
    the random transforms run without Python between them, and the model with them."""
    import tensorflow as tf

    distribution = active_distribution()
    if distribution is not None and distribution.replicas > 1:
        return None
    return tf.function(lambda images: model(augmentation(images, training=True), training=False),
                       reduce_retracing=True)


class ViewBatches(keras.utils.PyDataset):
    """Training batches that show each image through one of its cached views per epoch.

    Every epoch draws, for each image, a view at random (seeded) and a new order; a batch
    gathers its rows from the views' memory maps.
    """

    def __init__(self, cached: CachedViews, batch_size: int, *, seed: int = DEFAULT_SEED) -> None:
        super().__init__()
        self.views, self.labels = cached.views, cached.labels
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)
        self._draw()

    def _draw(self) -> None:
        count = len(self.labels)
        self._order = self._rng.permutation(count)
        self._view_of = self._rng.integers(len(self.views), size=count)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        first = self.views[0]
        batch = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
        chosen = self._view_of[rows]
        for view in np.unique(chosen):
            mask = chosen == view
            batch[mask] = self.views[view][rows[mask]]
        return batch, np.asarray(self.labels[rows])

    def on_epoch_end(self) -> None:
        self._draw()
