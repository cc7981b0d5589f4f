"""Augmented views of a frozen bottom, for training its top under (finite) augmentation.

Shared by ``finetune`` (the frozen part below the unfrozen block) and ``extract`` with
``augment`` (the base below its top block): ``views`` augmented copies of every training
image go through the frozen bottom once and are kept beside the feature cache
(``<features>/views-<layer>-<key>/``, see ``pipeline.cache.views``), keyed by the key
of the bottom's un-augmented features, the augmentation settings and the seed. Each epoch
then shows every image through one of its views. This approximates augmentation by a
finite sample of ``views`` draws per image; the exact path (augmentation through the full
model every epoch) stays available.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import keras
import numpy as np

from pipeline.cache.dataset_features import FeatureSource
from pipeline.cache.views import CachedViews, ViewCache, ViewsKey, augmented_view_computer
from pipeline.data.augment import GEOMETRY, AugmentConfig, build_augmentation
from pipeline.data.dataset import load_split
from pipeline.data.pca_color import rgb_principal_components
from pipeline.errors import PipelineError
from pipeline.runs.folder import ViewsRecord

APPROXIMATION = ("finite augmentation: each epoch shows every training image through one of "
                 "{views} augmented views computed once and cached (an approximation; the "
                 "exact path augments through the full model on every epoch)")


def check_views(views: int) -> None:
    if isinstance(views, bool) or not isinstance(views, int) or views < 0:
        raise PipelineError(f"`views` {views!r}: give a number of augmented views per image, "
                            "0 (augment on the fly, no cached views) or more")


def split_labels(file_paths: tuple[Path, ...], class_names: tuple[str, ...]) -> np.ndarray:
    """Labels of a split in file order, shaped as the feature cache stores them."""
    indices = np.array([class_names.index(path.parent.name) for path in file_paths])
    if len(class_names) == 2:
        return indices.astype("float32").reshape(-1, 1)
    return indices.astype("int32")


def training_views(
    cache_root: Path,
    bottom: keras.Model,
    source: FeatureSource,
    augmentation: AugmentConfig,
    views: int,
    seed: int,
    verbose: int = 1,
) -> tuple[CachedViews, float]:
    """``views`` augmented views of the training split through ``bottom``, cached.

    Returns the views and the seconds spent computing the missing ones (0: all reused).
    """
    augmentation.validate()
    data = load_split(source.data_dir, "train", source.image_size, source.batch_size,
                      cache=False)
    labels = split_labels(data.file_paths, data.class_names)
    pca = None
    if augmentation.pca_color:
        pca = rgb_principal_components((np.asarray(x) for x, _ in data.dataset), seed=seed)
    key = ViewsKey.make(source.key(bottom, "train").digest(),
                        source.key(bottom, "train").layer,
                        {**dataclasses.asdict(augmentation), "geometry": GEOMETRY}, seed)
    compute = augmented_view_computer(
        bottom, lambda: data.dataset, lambda s: build_augmentation(augmentation, pca, seed=s),
        seed, verbose=1 if verbose else 0,
    )
    if verbose:
        print(APPROXIMATION.format(views=views))
    started = time.perf_counter()
    cached = ViewCache(cache_root).ensure(
        key, views, labels=labels, feature_shape=tuple(bottom.output.shape[1:]),
        compute=compute, verbose=1 if verbose else 0,
    )
    seconds = time.perf_counter() - started if cached.computed else 0.0
    if verbose:
        print(f"views: {len(cached.views)} at {key.layer} in {cached.path} "
              f"({cached.computed} computed now, {seconds:.0f} s)")
    return cached, seconds


def views_record(cached: CachedViews, seconds: float) -> ViewsRecord:
    """What a run records about the views it trained on."""
    return ViewsRecord(path=str(cached.path), key=cached.key.digest(), layer=cached.key.layer,
                       views=len(cached.views), computed=cached.computed,
                       compute_seconds=round(seconds, 3))
