"""Feature extraction the fast way (the default): features once, then a head on arrays.

Run the conv base once over every split and keep its features on disk
(``models/features/``, reused by any later run with the same inputs), train the head on
those arrays in seconds, then join head and base into one saved model that takes raw images.
"""

from __future__ import annotations

import keras
import numpy as np

from pipeline.cache.dataset_features import (
    FeatureSource,
    derived_features,
    feature_cache,
    image_features,
)
from pipeline.cache.features import ArrayBatches, CachedFeatures, FeatureCache
from pipeline.data.manifest import class_names, manifest_checksum
from pipeline.models.bases import ConvBase
from pipeline.models.heads import (
    build_head,
    head_layers,
    initialise_head,
    needs_initialisation,
    split_pooling,
)
from pipeline.models.transfer import attach_head, base_output_name, build_features_model, split_at
from pipeline.models.weights import WeightsChoice
from pipeline.runs.folder import Run
from pipeline.training.config import splits_present
from pipeline.training.skeleton import Callbacks, train_new_run
from pipeline.workflows.extract.common import SAMPLE_IMAGES, extract_record, put_heads_on_base
from pipeline.workflows.extract.config import ExtractConfig

HEAD_STEPS_PER_EXECUTION = 25  # training steps of a head on arrays per call into TensorFlow
EVALUATION_BATCH = 250  # rows per call when a head on arrays is evaluated


def train_on_features(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, manifest: dict, policy: str,
    verbose, callbacks: Callbacks = (),
) -> Run:
    """Cache the base's features of every split, train the head on them; returns the run."""
    options = config.training
    # Features: the base's output per split, from the cache or computed once. The expensive
    # part (for VGG16 up to block4_pool) is cached too, for fine-tuning later.
    features_model = build_features_model(base, weights, config.image_size)
    names = class_names(manifest)  # the head after the base: its seeds do not move the base's
    pooling, head_rest = split_pooling(head_layers(config.head, len(names),
                                                   config.head_options))
    # A head that starts by pooling has it applied once, as the features are cached.
    cached_model = attach_head(features_model, pooling) if pooling else features_model
    source = FeatureSource(
        config.data_dir, manifest_checksum(manifest), base.name, config.image_size,
        weights.preprocessing, policy, verbose=1 if verbose else 0,
    )
    cache = feature_cache(config.features_dir, config.models_dir)
    features, middles = _base_features(cache, cached_model, base, source,
                                       splits_present(manifest, config.data_dir),
                                       config.recompute)

    # The head, trained on the arrays.
    head = build_head(config.head, features["train"].features.shape[1:], len(names),
                      layers=head_rest)
    if needs_initialisation(config.head):
        initialise_head(head.layers, _sample(features["train"].features, options.seed),
                        seed=options.seed)
    train = ArrayBatches(features["train"].features, features["train"].labels,
                         options.batch_size, shuffle=True, seed=options.seed)
    record = extract_record(
        config, base, weights, names, policy,
        counts={split: cached.count for split, cached in features.items()},
        base_output=base_output_name(features_model),
        features={split: cached.describe() for split, cached in features.items()},
        split_features={split: cached.describe() for split, cached in middles.items() if cached},
    )
    # Evaluation batches only change how many rows a call sees, not the numbers: larger.
    evaluation = {split: ArrayBatches(cached.features, cached.labels,
                                      max(options.batch_size, EVALUATION_BATCH))
                  for split, cached in features.items() if split != "train"}
    # Metrics come from the best head on the cached features; the saved model on images agrees.
    run = train_new_run(head, record, train, evaluation, models_dir=config.models_dir,
                        run_name=config.run_name, options=options, schedule=config.lr_schedule,
                        steps_per_execution=min(len(train), HEAD_STEPS_PER_EXECUTION),
                        callbacks=callbacks, verbose=verbose)

    # Saved models take images: the trained head goes back on top of the conv base.
    put_heads_on_base(run, cached_model, options, len(names))
    return run


def _base_features(
    cache: FeatureCache,
    features_model: keras.Model,
    base: ConvBase,
    source: FeatureSource,
    splits: list[str],
    recompute: bool,
) -> tuple[dict[str, CachedFeatures], dict[str, CachedFeatures | None]]:
    """The base's output on each split, through its split point when the graph allows."""
    try:
        bottom, top = split_at(features_model, base.top_block)
    except ValueError:  # a base whose top block needs more than one tensor: no split point
        bottom = top = None
    features, middles = {}, {}
    for split in splits:
        if bottom is None:
            features[split] = image_features(cache, features_model, source, split,
                                             recompute=recompute)
            middles[split] = None
        else:
            features[split], middles[split] = derived_features(
                cache, features_model, bottom, top, source, split, recompute=recompute
            )
    return features, middles


def _sample(features: np.ndarray, seed: int) -> np.ndarray:
    """Up to ``SAMPLE_IMAGES`` feature maps drawn at random (memory-mapped ones stay on disk)."""
    rng = np.random.default_rng(seed)
    count = min(SAMPLE_IMAGES, len(features))
    return np.asarray(features[np.sort(rng.choice(len(features), count, replace=False))])
