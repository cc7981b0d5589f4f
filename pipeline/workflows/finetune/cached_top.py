"""Cached fine-tuning: train only what is unfrozen, on the frozen part's output.

The frozen bottom of the model sees no augmentation, so its output on each image never
changes: it is computed once (or found in the feature cache, where ``extract`` left it)
and the trainable top trains on those tensors. The same updates as the full model on
images, at a fraction of the cost; the saved models are whole again (images in).
"""

from __future__ import annotations

import keras

from pipeline.cache.dataset_features import FeatureSource, feature_cache, image_features
from pipeline.cache.features import ArrayBatches, CachedFeatures
from pipeline.cache.views import CachedViews, ViewBatches
from pipeline.data.manifest import manifest_checksum
from pipeline.models.classifier import compile_classifier
from pipeline.models.heads import is_head_layer
from pipeline.models.saving import load_model, save_model
from pipeline.models.transfer import first_trainable_base_layer, split_at
from pipeline.models.weight_averaging import averaged_weights
from pipeline.runs.folder import BEST_MODEL, FINAL_MODEL, Run, RunRecord
from pipeline.training.skeleton import Callbacks, train_new_run
from pipeline.workflows.finetune.config import FinetuneConfig
from pipeline.workflows.finetune.source import ExtractSource


def cached_top_split(model: keras.Model, verbose=0) -> tuple[keras.Model, keras.Model] | None:
    """``(bottom, top)`` split at the first trainable layer, or None where the graph forbids it.

    ``bottom`` is frozen and sees no augmentation, so its output on each image never
    changes and can be computed once; ``top`` holds every trainable layer and shares
    them with ``model``.
    """
    first = first_trainable_base_layer(model)
    if first is None:  # only the head trains: cut at the head's first layer
        first = next(layer.name for layer in model.layers if is_head_layer(layer))
    try:
        return split_at(model, first)
    except ValueError:  # e.g. a cut inside a residual block: the top needs two tensors
        if verbose:
            print(f"the layers from {first} on need more than one tensor from below; "
                  "training the full model instead of a cached top")
        return None


def frozen_part_source(
    source: ExtractSource, manifest: dict, policy: str, verbose
) -> FeatureSource:
    """The dataset and base the frozen part computes from, as the feature cache keys them."""
    return FeatureSource(
        source.data_dir, manifest_checksum(manifest), source.base.name,
        source.record.image_size, str(source.record.preprocessing), policy,
        verbose=1 if verbose else 0,
    )


def frozen_part_features(
    config: FinetuneConfig,
    source: ExtractSource,
    manifest: dict,
    bottom: keras.Model,
    splits: list[str],
    policy: str,
    verbose,
) -> dict[str, CachedFeatures]:
    """``bottom``'s output on every split, from the feature cache or computed once."""
    feature_source = frozen_part_source(source, manifest, policy, verbose)
    cache = feature_cache(config.features_dir, config.models_dir)
    return {split: image_features(cache, bottom, feature_source, split,
                                  recompute=config.recompute) for split in splits}


def train_top(
    model: keras.Model,
    top: keras.Model,
    features: dict[str, CachedFeatures],
    record: RunRecord,
    config: FinetuneConfig,
    verbose,
    *,
    views: CachedViews | None = None,
    callbacks: Callbacks = (),
) -> Run:
    """Train ``top`` (sharing its layers with ``model``) on the cached tensors into a new
    run; save ``model`` (images in) as its best and final models; returns the run.

    The training batches are the cached un-augmented training features, reshuffled every
    epoch, or with ``views`` one cached augmented view of each training image per epoch.
    """
    options = config.training
    if views is not None:
        train = ViewBatches(views, options.batch_size, seed=options.seed)
    else:
        train = ArrayBatches(features["train"].features, features["train"].labels,
                             options.batch_size, shuffle=True, seed=options.seed)
    evaluation = {split: ArrayBatches(cached.features, cached.labels, options.batch_size)
                  for split, cached in features.items() if split != "train"}
    # The whole model is saved compiled as trained, so whoever loads it can evaluate it.
    compile_classifier(model, len(record.class_names), options.optimizer, options.learning_rate)
    # best.keras holds the best top for now: the same numbers as the full model on images.
    run = train_new_run(top, record, train, evaluation, models_dir=config.models_dir,
                        run_name=config.run_name, options=options, schedule=config.lr_schedule,
                        callbacks=callbacks, verbose=verbose)
    _save_full_models(run, model, top)
    return run


def _save_full_models(run: Run, model: keras.Model, top: keras.Model) -> None:
    """Replace the top-only ``final``/``best`` models with the whole model (images in)."""
    # Trained through ``top``, so ``model``'s own optimizer was never built; build it so that
    # the saved state matches what loading expects.
    model.optimizer.build(model.trainable_variables)
    # top shares its layers: model is as training left it (averaged, where top averages;
    # a run stopped early has the raw weights in place, so the average is swapped in here)
    with averaged_weights(top):
        save_model(model, run.file(FINAL_MODEL))
    best = run.file(BEST_MODEL)
    if best.is_file():
        top.set_weights(load_model(best).get_weights())
        save_model(model, best)
