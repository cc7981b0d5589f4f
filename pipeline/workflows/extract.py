"""Transfer learning by feature extraction: a pretrained conv base, frozen, under a new head.

Read top to bottom. Fast (the default): run the conv base once over every split and keep
its features on disk (``models/features/``, reused by any later run with the same inputs),
train the head on those arrays in seconds, then join head and base into one saved model
that takes raw images. With ``augment``: augmentation layers in front of the frozen base,
trained end to end on images; slower, but it overfits less.

Python users call ``run_extract(ExtractConfig(...))`` with the same options as
``python cli.py extract``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.dataset import load_split
from pipeline.data.manifest import SPLITS, class_names, manifest_checksum, require_prepared
from pipeline.data.pca_color import rgb_principal_components
from pipeline.errors import PipelineError
from pipeline.features import ArrayBatches, CachedFeatures, FeatureCache
from pipeline.models.bases import DEFAULT_BASE, ConvBase, get_base
from pipeline.models.classifier import compile_classifier
from pipeline.models.heads import (
    DEFAULT_HEAD,
    HEADS,
    SIZE_AGNOSTIC_HEADS,
    HeadOptions,
    build_head,
    initialise_head,
    needs_initialisation,
)
from pipeline.models.transfer import (
    attach_head,
    base_layers,
    build_features_model,
    build_transfer_model,
    split_at,
)
from pipeline.models.weights import WeightsChoice, resolve_weights
from pipeline.plots.curves import plot_runs
from pipeline.runs import BEST_MODEL, CURVES, FINAL_MODEL, Run
from pipeline.workflows.cached_features import FeatureSource, derived_features, image_features
from pipeline.workflows.config import check_training_options, config_to_dict, seed_everything
from pipeline.workflows.training import evaluate_into_run, fit_into_run, save_model

KIND = "extract"
EXTRACT_BATCH_SIZE = 32  # images per conv base call while extracting; memory, not accuracy


@dataclass
class ExtractConfig:
    """Everything an extraction run depends on; written to the run as config.json."""

    data_dir: Path = Path("data/cats_and_dogs_small")
    models_dir: Path = Path("models")
    run_name: str | None = None
    base: str = DEFAULT_BASE
    weights: str = "auto"  # auto | imagenet | lpips | none | a file
    preprocessing: str | None = None  # None: what the weights need
    image_size: int = 150
    head: str = DEFAULT_HEAD
    dense: int = 256
    dropout: float = 0.5
    clusters: int = 16  # --head netvlad: clusters K
    ghost_clusters: int = 0  # --head netvlad: ghost clusters (GhostVLAD)
    local_filters: int = 32  # --head local: filters
    multi_size: tuple[int, ...] = ()  # train on images of these sizes (SPP-net); gap/spp/netvlad
    augment: bool = False  # False: fast extraction; True: frozen base end to end on images
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: str = "rmsprop"
    learning_rate: float = 2e-5
    batch_size: int = 20
    epochs: int = 30
    early_stopping: int | None = None  # patience in epochs; None trains all epochs
    features_dir: Path | None = None  # feature cache; None: <models_dir>/features
    recompute: bool = False  # ignore cached features and compute them again
    seed: int = 1337

    def head_options(self) -> HeadOptions:
        return HeadOptions(self.dense, self.dropout, self.clusters, self.ghost_clusters,
                           self.local_filters)

    def feature_cache_dir(self) -> Path:
        return Path(self.features_dir) if self.features_dir else Path(self.models_dir) / "features"


def run_extract(config: ExtractConfig, verbose: int | str = "auto") -> Run:
    """Train a head on a frozen pretrained conv base; returns the run."""
    base = _check(config)
    manifest = require_prepared(config.data_dir)
    weights = resolve_weights(
        config.weights, base, config.image_size, preprocessing=config.preprocessing
    )
    if verbose:
        print(f"conv base: {base.name}, weights: {weights.detail}, "
              f"preprocessing: {weights.preprocessing}")
    seed_everything(config.seed)  # after any download, before random weights are drawn
    if config.augment or config.multi_size:
        return _train_on_images(config, base, weights, manifest, verbose)
    return _train_on_features(config, base, weights, manifest, verbose)


def _check(config: ExtractConfig) -> ConvBase:
    """Refuse bad options before any expensive step."""
    check_run_name(config.models_dir, config.run_name)
    base = get_base(config.base)
    base.check_image_size(config.image_size)
    if config.head not in HEADS:
        raise PipelineError(f"--head {config.head!r}: choose one of {', '.join(HEADS)}")
    config.head_options().validate()
    if config.multi_size:
        if config.head not in SIZE_AGNOSTIC_HEADS:
            raise PipelineError(f"--multi-size needs a head that takes any feature map size "
                                f"({', '.join(SIZE_AGNOSTIC_HEADS)}), not --head {config.head}")
        for size in config.multi_size:
            base.check_image_size(size)
    check_training_options(config.optimizer, config.learning_rate, config.epochs,
                           config.batch_size, config.augmentation if config.augment else None)
    return base


def check_run_name(models_dir: Path, run_name: str | None) -> None:
    """Fail now, not after extracting features for minutes, if ``--run-name`` is taken."""
    if run_name is not None:
        folder = Path(models_dir) / run_name
        if folder.is_dir() and any(folder.iterdir()):
            raise PipelineError(f"run folder {folder} already exists; choose another --run-name")


def _splits_present(manifest: dict) -> list[str]:
    return [split for split in SPLITS if sum(manifest["counts"][split].values())]


# -- fast: features once, then a head on arrays --------------------------------------------------


def _train_on_features(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, manifest: dict, verbose
) -> Run:
    # Features: the base's output per split, from the cache or computed once. The expensive
    # part (for VGG16 up to block4_pool) is cached too, for fine-tuning later.
    features_model = build_features_model(base, weights, config.image_size)
    source = FeatureSource(
        config.data_dir, manifest_checksum(manifest), base.name, config.image_size,
        weights.preprocessing, EXTRACT_BATCH_SIZE, verbose=1 if verbose else 0,
    )
    cache = FeatureCache(config.feature_cache_dir())
    features, middles = _base_features(cache, features_model, base, source, manifest,
                                       config.recompute)
    names = class_names(manifest)

    # The head, trained on the arrays.
    head = build_head(config.head, features["train"].features.shape[1:], len(names),
                      config.head_options())
    if needs_initialisation(config.head):
        initialise_head(head.layers, _sample(features["train"].features, config.seed),
                        seed=config.seed)
    compile_classifier(head, len(names), config.optimizer, config.learning_rate)

    run = Run.create(config.models_dir, KIND, config.run_name)
    run.write_config(
        KIND,
        config_to_dict(config),
        class_names=names,
        counts={split: cached.count for split, cached in features.items()},
        base=base.name,
        weights=weights.as_dict(),
        preprocessing=weights.preprocessing,
        features={split: cached.describe() for split, cached in features.items()},
        split_features={split: cached.describe() for split, cached in middles.items() if cached},
        metrics_from="the best head on the cached features (the saved model on images agrees)",
    )
    train = ArrayBatches(features["train"].features, features["train"].labels,
                         config.batch_size, shuffle=True, seed=config.seed)
    validation = _batches(features["validation"], config.batch_size)
    outcome = fit_into_run(head, run, train, validation, epochs=config.epochs,
                           early_stopping=config.early_stopping, verbose=verbose)
    if outcome.epochs_run and not outcome.interrupted:
        evaluate_into_run(run, {split: _batches(cached, config.batch_size)
                                for split, cached in features.items() if split != "train"})

    # Saved models take images: the trained head goes back on top of the conv base.
    _put_heads_on_base(run, features_model, config)
    if outcome.epochs_run:
        plot_runs([run], run.file(CURVES))
    return run


def _base_features(
    cache: FeatureCache,
    features_model: keras.Model,
    base: ConvBase,
    source: FeatureSource,
    manifest: dict,
    recompute: bool,
) -> tuple[dict[str, CachedFeatures], dict[str, CachedFeatures | None]]:
    """The base's output on each split, through its split point when the graph allows."""
    try:
        bottom, top = split_at(features_model, base.top_block)
    except ValueError:  # a base whose top block needs more than one tensor: no split point
        bottom = top = None
    features, middles = {}, {}
    for split in _splits_present(manifest):
        if bottom is None:
            features[split] = image_features(cache, features_model, source, split,
                                             recompute=recompute)
            middles[split] = None
        else:
            features[split], middles[split] = derived_features(
                cache, features_model, bottom, top, source, split, recompute=recompute
            )
    for needed in ("train", "validation"):
        if needed not in features:
            raise PipelineError(f"{source.data_dir}: the {needed} split is empty; "
                                "re-run `python cli.py data prepare`")
    return features, middles


def _batches(cached: CachedFeatures, batch_size: int) -> ArrayBatches:
    return ArrayBatches(cached.features, cached.labels, batch_size)


def _put_heads_on_base(run: Run, features_model: keras.Model, config: ExtractConfig) -> None:
    """Replace the head-only ``best``/``final`` models with conv base + head (images in)."""
    for name in (BEST_MODEL, FINAL_MODEL):
        path = run.file(name)
        if not path.is_file():
            continue
        head = keras.models.load_model(path, safe_mode=True, compile=False)
        layers = [layer for layer in head.layers if not isinstance(layer, keras.layers.InputLayer)]
        model = attach_head(features_model, layers)
        # Compiled as trained, so whoever loads it can evaluate it at once.
        num_classes = len(run.read_config()["class_names"])
        compile_classifier(model, num_classes, config.optimizer, config.learning_rate)
        model.optimizer.build(model.trainable_variables)  # saved state matches what loading builds
        save_model(model, path)
    run.update_config(saved_models="conv base + head, raw images in",
                      base_output=base_output_name(features_model))


# -- with augmentation: the frozen base end to end on images ------------------------------------


def _train_on_images(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, manifest: dict, verbose
) -> Run:
    common = dict(image_size=config.image_size, batch_size=config.batch_size)
    train_size = max(config.multi_size, default=config.image_size)
    train = load_split(config.data_dir, "train", train_size, config.batch_size, shuffle=True,
                       seed=config.seed)
    evaluation = {split: load_split(config.data_dir, split, cache=False, **common)
                  for split in _splits_present(manifest) if split != "train"}
    if "validation" not in evaluation:
        raise PipelineError(f"{config.data_dir}: the validation split is empty")

    pca = None
    if config.augmentation.pca_color:
        pca = rgb_principal_components((images.numpy() for images, _ in train.dataset),
                                       seed=config.seed)
    augmentation = build_augmentation(config.augmentation, pca, seed=config.seed)
    model = build_transfer_model(
        base, weights, None if config.multi_size else config.image_size, train.num_classes,
        config.head, config.head_options(), augmentation,
    )
    if needs_initialisation(config.head):
        initialise_head(model.layers, _image_feature_sample(model, train.dataset),
                        seed=config.seed)
    train_batches = train.dataset
    if config.multi_size:
        train_batches = train_batches.map(_random_size_resizer(config.multi_size, config.seed))
    compile_classifier(model, train.num_classes, config.optimizer, config.learning_rate)

    run = Run.create(config.models_dir, KIND, config.run_name)
    run.write_config(
        KIND,
        config_to_dict(config),
        class_names=list(train.class_names),
        counts={"train": train.count, **{s: d.count for s, d in evaluation.items()}},
        base=base.name,
        weights=weights.as_dict(),
        preprocessing=weights.preprocessing,
        saved_models="conv base + head, raw images in",
        base_output=base_output_name(model),
    )
    outcome = fit_into_run(model, run, train_batches, evaluation["validation"].dataset,
                           epochs=config.epochs, early_stopping=config.early_stopping,
                           verbose=verbose)
    if outcome.epochs_run:
        if not outcome.interrupted:
            evaluate_into_run(run, {split: data.dataset for split, data in evaluation.items()})
        plot_runs([run], run.file(CURVES))
    return run


def base_output_name(model: keras.Model) -> str:
    """Name of the conv base's last layer in a transfer model (the head's input)."""
    return base_layers(model)[-1].name


# -- helpers of the heads that need them ---------------------------------------------------------

SAMPLE_IMAGES = 256  # training images whose features start a NetVLAD head (k-means)


def _sample(features: np.ndarray, seed: int) -> np.ndarray:
    """Up to ``SAMPLE_IMAGES`` feature maps drawn at random (memory-mapped ones stay on disk)."""
    rng = np.random.default_rng(seed)
    count = min(SAMPLE_IMAGES, len(features))
    return np.asarray(features[np.sort(rng.choice(len(features), count, replace=False))])


def _image_feature_sample(model: keras.Model, dataset) -> np.ndarray:
    """The conv base's features of the first training batches (no augmentation at predict)."""
    base_model = keras.Model(model.input, model.get_layer(base_output_name(model)).output)
    samples, seen = [], 0
    for images, _ in dataset:
        samples.append(base_model.predict_on_batch(images))
        seen += len(samples[-1])
        if seen >= SAMPLE_IMAGES // 4:  # the base runs on images here: keep it short
            break
    return np.concatenate(samples)


def _random_size_resizer(sizes: tuple[int, ...], seed: int):
    """A tf.data map giving each training batch one size drawn from ``sizes`` (SPP-net)."""
    import tensorflow as tf

    choices = tf.constant(sorted(set(sizes)), dtype=tf.int32)
    generator = tf.random.Generator.from_seed(seed)

    def resize(images, labels):
        index = generator.uniform((), 0, len(choices), dtype=tf.int32)
        size = choices[index]
        return tf.image.resize(images, tf.stack([size, size])), labels

    return resize
