"""The features of one split at one layer of a transfer model: from the cache, else computed.

Shared by ``extract`` (the base's output, derived from the split point's features) and
``finetune`` (the split point's features, to train only the unfrozen top).

Features are keyed on the dataset's manifest checksum, and the files are verified against
that manifest (``verify_dataset``: sizes and times, checksums where those changed) every
time features are computed or reused, so a photo replaced or deleted after ``data prepare``
is an error naming it, never features of other photos under the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from pipeline.cache.features import (
    ArrayBatches,
    CachedFeatures,
    FeatureCache,
    FeatureKey,
    fill_from_model,
    weights_fingerprint,
)
from pipeline.data.dataset import load_split
from pipeline.data.manifest import verify_dataset
from pipeline.devices import strategies
from pipeline.models.transfer import producer_name


def feature_cache(features_dir: Path | None, models_dir: Path) -> FeatureCache:
    """The cache at ``features_dir``, by default ``<models_dir>/features`` (a cluster's
    non-chief worker: a throw-away one, as only the chief writes caches)."""
    root = Path(features_dir) if features_dir else Path(models_dir) / "features"
    return FeatureCache(strategies.output_dir(root))


@dataclass(frozen=True)
class FeatureSource:
    """The dataset and conv base that features are computed from."""

    data_dir: Path
    dataset_checksum: str
    base: str
    image_size: int
    preprocessing: str
    precision: str = "float32"  # the dtype policy the model computes in
    batch_size: int = 32  # images per conv base call while extracting: memory, not accuracy
    verbose: int = 1

    def key(self, model: keras.Model, split: str) -> FeatureKey:
        """The key of ``model``'s output on ``split``; ``model`` maps images to that layer."""
        return FeatureKey(
            base=self.base,
            layer=producer_name(model, model.output),
            weights=weights_fingerprint(model),
            image_size=self.image_size,
            preprocessing=self.preprocessing,
            dataset=self.dataset_checksum,
            split=split,
            precision=self.precision,
        )


def image_features(
    cache: FeatureCache,
    model: keras.Model,
    source: FeatureSource,
    split: str,
    *,
    recompute: bool = False,
) -> CachedFeatures:
    """``model`` (images in, frozen) run once over ``split``'s images, or its cached output."""
    key = source.key(model, split)
    data = load_split(source.data_dir, split, source.image_size, source.batch_size, cache=False)
    label_spec = data.dataset.element_spec[1]
    return cache.get(
        key,
        recompute=recompute,
        count=data.count,
        feature_shape=tuple(model.output.shape[1:]),
        label_shape=tuple(label_spec.shape[1:]),
        label_dtype=label_spec.dtype.name,
        fill=fill_from_model(
            model, data.dataset, f"{split}: {key.layer} of {data.count} images", source.verbose
        ),
        info={"class_names": list(data.class_names), "computed_from": "images"},
    )


def derived_features(
    cache: FeatureCache,
    full: keras.Model,
    bottom: keras.Model,
    top: keras.Model,
    source: FeatureSource,
    split: str,
    *,
    recompute: bool = False,
) -> tuple[CachedFeatures, CachedFeatures | None]:
    """``full``'s output on ``split``, computed as ``top`` over ``bottom``'s cached output.

    ``full`` = ``top`` after ``bottom``; running the expensive ``bottom`` once serves both
    feature extraction (this output) and cached fine-tuning (``bottom``'s output).
    Returns ``(full's features, bottom's features)``; the second is None when ``full``'s were
    cached and ``bottom``'s are not (they are not recomputed just in case).
    """
    key = source.key(full, split)
    cached = None if recompute else cache.load(key)
    if cached is not None:
        verify_dataset(source.data_dir)  # reused only while the photos are still the same
        return cached, cache.load(source.key(bottom, split), warn=False)
    middle = image_features(cache, bottom, source, split, recompute=recompute)
    batches = ArrayBatches(middle.features, middle.labels, source.batch_size)
    made = cache.write(
        key,
        count=middle.count,
        feature_shape=tuple(full.output.shape[1:]),
        label_shape=tuple(middle.labels.shape[1:]),
        label_dtype=middle.labels.dtype.name,
        fill=fill_from_model(top, (batches[i] for i in range(len(batches))),
                             f"{split}: {key.layer} from {middle.key.layer}", source.verbose),
        info={"computed_from": str(middle.path)},
    )
    return made, middle
