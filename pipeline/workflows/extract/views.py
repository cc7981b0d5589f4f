"""Feature extraction under augmentation, on cached augmented views of the frozen base.

The way of ``extract`` with ``augment`` and ``views`` V > 0 (the default). Everything below
the base's top block costs most of the compute and, frozen, never changes: its output on V
augmented copies of every training image is computed once and cached (``views.py``; the
same views ``finetune`` trains on later). Each epoch then runs only the base's top block
(frozen) and the head, on one view per image: augmentation at a fraction of the cost of
running the whole base every epoch, approximated by a finite set of V draws per image
(``views`` 0 augments on the fly, the exact path: ``images.py``). The saved models take
images.
"""

from __future__ import annotations

import keras
import numpy as np

from pipeline.cache.dataset_features import FeatureSource, feature_cache, image_features
from pipeline.cache.features import ArrayBatches
from pipeline.cache.training_views import training_views, views_record
from pipeline.cache.views import ViewBatches
from pipeline.data.manifest import class_names, manifest_checksum
from pipeline.models.bases import ConvBase
from pipeline.models.heads import head_layers, initialise_head, is_head_layer, needs_initialisation
from pipeline.models.heads import stack as stack_layers
from pipeline.models.transfer import base_output_name, split_at
from pipeline.models.weights import WeightsChoice
from pipeline.runs.folder import Run
from pipeline.training.config import splits_present
from pipeline.training.skeleton import Callbacks, train_new_run
from pipeline.workflows.extract.common import extract_record, put_heads_on_base
from pipeline.workflows.extract.config import ExtractConfig


def split_for_views(
    features_model: keras.Model, base: ConvBase
) -> tuple[keras.Model, keras.Model] | None:
    """``(bottom, top)`` at the base's top block, or None where the graph cannot split there."""
    try:
        return split_at(features_model, base.top_block)
    except ValueError:
        return None


def train_on_views(
    config: ExtractConfig,
    base: ConvBase,
    weights: WeightsChoice,
    features_model: keras.Model,
    parts: tuple[keras.Model, keras.Model],
    manifest: dict,
    policy: str,
    verbose,
    callbacks: Callbacks = (),
) -> Run:
    """Top block (frozen) + head trained on cached views of the bottom; returns the run."""
    options = config.training
    bottom, top = parts
    names = class_names(manifest)
    source = FeatureSource(config.data_dir, manifest_checksum(manifest), base.name,
                           config.image_size, weights.preprocessing, policy,
                           verbose=1 if verbose else 0)
    cache = feature_cache(config.features_dir, config.models_dir)
    splits = [s for s in splits_present(manifest, config.data_dir) if s != "train"]
    plain = {split: image_features(cache, bottom, source, split, recompute=config.recompute)
             for split in splits}
    views, seconds = training_views(cache.root, bottom, source, config.augmentation,
                                    config.views, options.seed, verbose)

    layers = head_layers(config.head, len(names), config.head_options)
    model = keras.Model(top.input, stack_layers(layers, top.output), name=f"{base.name}_top_head")
    if needs_initialisation(config.head):
        sample = np.asarray(views.views[0][: min(64, len(views.labels))])
        initialise_head(layers, np.asarray(top.predict(sample, verbose=0)), seed=options.seed)
    train = ViewBatches(views, options.batch_size, seed=options.seed)
    record = extract_record(
        config, base, weights, names, policy,
        counts={"train": len(views.labels), **{s: f.count for s, f in plain.items()}},
        base_output=base_output_name(features_model),
        split_features={split: cached.describe() for split, cached in plain.items()},
        views=views_record(views, seconds),
    )
    evaluation = {split: ArrayBatches(cached.features, cached.labels, options.batch_size)
                  for split, cached in plain.items()}
    run = train_new_run(model, record, train, evaluation, models_dir=config.models_dir,
                        run_name=config.run_name, options=options, schedule=config.lr_schedule,
                        callbacks=callbacks, verbose=verbose)
    put_heads_on_base(run, features_model, options, len(names), keep=is_head_layer)
    return run
