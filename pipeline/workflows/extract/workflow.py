"""Transfer learning by feature extraction: a pretrained conv base, frozen, under a new head.

Read top to bottom. Fast (the default): run the conv base once over every split and keep
its features on disk (``models/features/``, reused by any later run with the same inputs),
train the head on those arrays in seconds, then join head and base into one saved model
that takes raw images. With ``augment`` (or ``multi_size``): the frozen base under the head,
trained end to end on images (``extract_images.py``); slower, but augmentation overfits less.

Python users call ``run_extract(ExtractConfig(...))`` with the same options as
``python cli.py extract``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from pipeline.cache.dataset_features import (
    FeatureSource,
    derived_features,
    feature_cache,
    image_features,
)
from pipeline.cache.features import ArrayBatches, CachedFeatures, FeatureCache
from pipeline.cache.training_views import check_views
from pipeline.data.augment import AugmentConfig
from pipeline.data.manifest import class_names, manifest_checksum, require_prepared
from pipeline.errors import PipelineError
from pipeline.models.bases import DEFAULT_BASE, ConvBase, get_base
from pipeline.models.classifier import compile_classifier
from pipeline.models.head_options import head_learning_rate
from pipeline.models.heads import (
    SIZE_AGNOSTIC_HEADS,
    HeadOptions,
    build_head,
    check_head,
    head_layers,
    initialise_head,
    needs_initialisation,
    split_pooling,
)
from pipeline.models.saving import load_model, save_model
from pipeline.models.schedules import ScheduleOptions, compile_scheduled
from pipeline.models.transfer import attach_head, base_output_name, build_features_model, split_at
from pipeline.models.weights import WeightsChoice, resolve_weights
from pipeline.runs.folder import BEST_MODEL, EXTRACT, FINAL_MODEL, Run, RunRecord, WeightsRecord
from pipeline.training.config import config_to_dict, seed_everything, splits_present
from pipeline.training.context import training_context
from pipeline.training.loop import train_evaluate_plot
from pipeline.training.options import EXTRACT_TRAINING, TrainingOptions

SAMPLE_IMAGES = 256  # training images whose features start a NetVLAD head (k-means)
HEAD_STEPS_PER_EXECUTION = 25  # training steps of a head on arrays per call into TensorFlow
EVALUATION_BATCH = 250  # rows per call when a head on arrays is evaluated


@dataclass
class ExtractConfig:
    """Everything an extraction run depends on; recorded in the run's config.json."""

    data_dir: Path = Path("data/cats_and_dogs_small")
    models_dir: Path = Path("models")
    run_name: str | None = None
    base: str = DEFAULT_BASE
    weights: str = "auto"  # auto | imagenet | lpips | none | a file
    preprocessing: str | None = None  # None: what the weights need
    image_size: int | None = None  # None: the base's own size (VGG16: the book's 150)
    head: str | None = None  # None: the base's own (VGG16: the book's flatten; others gap)
    head_options: HeadOptions = field(default_factory=HeadOptions)
    multi_size: tuple[int, ...] = ()  # train on images of these sizes (SPP-net); gap/spp/netvlad
    augment: bool = False  # False: fast extraction; True: under augmentation (views or exact)
    views: int = 8  # with augment: cached augmented views per image; 0: the exact path
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    lr_schedule: ScheduleOptions = field(default_factory=ScheduleOptions)  # rate over epochs
    features_dir: Path | None = None  # feature cache; None: <models_dir>/features
    recompute: bool = False  # ignore cached features and compute them again
    training: TrainingOptions = EXTRACT_TRAINING


def run_extract(config: ExtractConfig, verbose: int | str = "auto") -> Run:
    """Train a head on a frozen pretrained conv base; returns the run."""
    config = with_base_defaults(config)
    base = _check(config)
    manifest = require_prepared(config.data_dir)
    weights = resolve_weights(
        config.weights, base, config.image_size, preprocessing=config.preprocessing
    )
    if verbose:
        print(f"conv base: {base.name}, weights: {weights.detail}, "
              f"preprocessing: {weights.preprocessing}")
    with training_context(config.training) as policy:
        seed_everything(config.training.seed)  # after any download, before random weights
        if config.augment and config.views and not config.multi_size:
            from pipeline.workflows.extract.views import split_for_views, train_on_views

            features_model = build_features_model(base, weights, config.image_size)
            parts = split_for_views(features_model, base)
            if parts is not None:
                return train_on_views(config, base, weights, features_model, parts, manifest,
                                      policy, verbose)
            if verbose:
                print(f"{base.name} cannot be split at {base.top_block}: augmenting through "
                      "the whole base instead of cached views")
        if config.augment or config.multi_size:
            from pipeline.workflows.extract.images import train_on_images

            return train_on_images(config, base, weights, manifest, policy, verbose)
        return _train_on_features(config, base, weights, manifest, policy, verbose)


def with_base_defaults(config: ExtractConfig) -> ExtractConfig:
    """``config`` with the base's own image size and head, and the head's learning rate,
    where none was given."""
    base = get_base(config.base)
    head = config.head or base.default_head
    training = config.training
    if training.learning_rate is None:
        training = dataclasses.replace(training, learning_rate=head_learning_rate(head))
    return dataclasses.replace(
        config, image_size=config.image_size or base.default_image_size, head=head,
        training=training,
    )


def _check(config: ExtractConfig) -> ConvBase:
    """Refuse bad options before any expensive step."""
    config.training.validate()
    config.lr_schedule.validate(config.training.epochs)
    check_views(config.views)
    Run.check_name_free(config.models_dir, config.run_name)
    base = get_base(config.base)
    base.check_image_size(config.image_size)
    check_head(config.head, config.head_options)
    if config.multi_size:
        if config.head not in SIZE_AGNOSTIC_HEADS:
            raise PipelineError(f"`multi_size` needs a head that takes any feature map size "
                                f"({', '.join(SIZE_AGNOSTIC_HEADS)}), not `head` {config.head}")
        for size in config.multi_size:
            base.check_image_size(size)
    if config.augment:
        config.augmentation.validate()
    return base


def extract_record(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, names: list[str],
    policy: str, **fields,
) -> RunRecord:
    """The run record both ways of extracting share."""
    return RunRecord(
        kind=EXTRACT, data_dir=str(config.data_dir), class_names=list(names),
        image_size=config.image_size, config=config_to_dict(config), precision=policy,
        base=base.name, weights=WeightsRecord(weights.source, weights.detail),
        preprocessing=weights.preprocessing, schedule=config.lr_schedule.schedule,
        warmup_epochs=config.lr_schedule.warmup_epochs, **fields,
    )


# -- fast: features once, then a head on arrays --------------------------------------------------


def _train_on_features(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, manifest: dict, policy: str,
    verbose,
) -> Run:
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
    compile_scheduled(head, len(names), options.optimizer, options.learning_rate,
                      config.lr_schedule, steps_per_epoch=len(train), epochs=options.epochs,
                      ema_momentum=options.ema_momentum,
                      steps_per_execution=min(len(train), HEAD_STEPS_PER_EXECUTION))

    run = Run.create(config.models_dir, EXTRACT, config.run_name)
    run.write_record(extract_record(
        config, base, weights, names, policy,
        counts={split: cached.count for split, cached in features.items()},
        base_output=base_output_name(features_model),
        features={split: cached.describe() for split, cached in features.items()},
        split_features={split: cached.describe() for split, cached in middles.items() if cached},
    ))
    # Evaluation batches only change how many rows a call sees, not the numbers: larger.
    evaluation = {split: ArrayBatches(cached.features, cached.labels,
                                      max(options.batch_size, EVALUATION_BATCH))
                  for split, cached in features.items() if split != "train"}
    # Metrics come from the best head on the cached features; the saved model on images agrees.
    train_evaluate_plot(head, run, train, evaluation, options, verbose)

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


def _not_input(layer: keras.layers.Layer) -> bool:
    return not isinstance(layer, keras.layers.InputLayer)


def put_heads_on_base(
    run: Run,
    features_model: keras.Model,
    options: TrainingOptions,
    num_classes: int,
    keep: Callable[[keras.layers.Layer], bool] = _not_input,
) -> None:
    """Replace the ``best``/``final`` models trained on features with base + head (images in).

    ``keep`` picks the trained model's layers that are the head (default: all but its input;
    ``extract_views`` trains the base's top block too, and keeps only the head layers).
    """
    for name in (BEST_MODEL, FINAL_MODEL):
        path = run.file(name)
        if not path.is_file():
            continue
        trained = load_model(path)
        model = attach_head(features_model, [layer for layer in trained.layers if keep(layer)])
        # Compiled as trained, so whoever loads it can evaluate it at once.
        compile_classifier(model, num_classes, options.optimizer, options.learning_rate)
        model.optimizer.build(model.trainable_variables)  # saved state matches what loading builds
        save_model(model, path)


def _sample(features: np.ndarray, seed: int) -> np.ndarray:
    """Up to ``SAMPLE_IMAGES`` feature maps drawn at random (memory-mapped ones stay on disk)."""
    rng = np.random.default_rng(seed)
    count = min(SAMPLE_IMAGES, len(features))
    return np.asarray(features[np.sort(rng.choice(len(features), count, replace=False))])
