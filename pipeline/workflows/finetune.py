"""Fine-tuning: thaw the top of the conv base of a trained extraction run, train at a low rate.

Read top to bottom: open the extract run and its best model (head weights kept), put
augmentation in front or take it out, unfreeze the top block (or ``unfreeze`` N layers, or
from a named layer), recompile with a low learning rate, train, evaluate, plot.

Without augmentation the frozen lower part of the base sees the same images every epoch,
so its output is computed once (the feature cache; for VGG16 ``block4_pool``, which
``extract`` already cached) and only the unfrozen top trains, on those tensors: the same
updates as the full model, at a fraction of the cost. Python users call
``run_finetune(FinetuneConfig(...))`` with the same options as ``python cli.py finetune``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.dataset import load_split
from pipeline.data.manifest import SPLITS, class_names, manifest_checksum, require_prepared
from pipeline.data.pca_color import rgb_principal_components
from pipeline.errors import PipelineError
from pipeline.features import ArrayBatches, CachedFeatures, FeatureCache
from pipeline.models.bases import ConvBase, get_base
from pipeline.models.classifier import compile_classifier
from pipeline.models.heads import is_head_layer
from pipeline.models.transfer import (
    INPUT_NAME,
    first_trainable_base_layer,
    replace_augmentation,
    split_at,
    unfreeze,
)
from pipeline.plots.curves import plot_runs
from pipeline.runs import BEST_MODEL, CURVES, FINAL_MODEL, Run
from pipeline.workflows.cached_features import FeatureSource, image_features
from pipeline.workflows.config import check_training_options, config_to_dict, seed_everything
from pipeline.workflows.extract import EXTRACT_BATCH_SIZE, check_run_name
from pipeline.workflows.extract import KIND as EXTRACT_KIND
from pipeline.workflows.training import evaluate_into_run, fit_into_run, save_model

KIND = "finetune"


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run depends on; written to the run as config.json."""

    source_run: Path = Path("models/extract")  # an extract run folder
    data_dir: Path | None = None  # None: the dataset the extract run used
    models_dir: Path = Path("models")
    run_name: str | None = None
    unfreeze: str = "top"  # top | all | N (last N base layers) | a layer name
    optimizer: str = "rmsprop"
    learning_rate: float = 1e-5
    batch_size: int = 20
    epochs: int = 30
    augment: bool = False
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    cache_top: bool = True  # without augmentation, train the unfrozen top on cached tensors
    early_stopping: int | None = None
    features_dir: Path | None = None  # None: <models_dir>/features
    recompute: bool = False
    seed: int = 1337

    def feature_cache_dir(self) -> Path:
        return Path(self.features_dir) if self.features_dir else Path(self.models_dir) / "features"


@dataclass(frozen=True)
class ExtractSource:
    """What fine-tuning takes over from the extract run."""

    run: Run
    base: ConvBase
    image_size: int
    preprocessing: str
    class_names: list[str]
    data_dir: Path


def run_finetune(config: FinetuneConfig, verbose: int | str = "auto") -> Run:
    """Fine-tune the conv base of an extract run; returns the new run."""
    _check(config)
    source = open_extract_run(config.source_run, config.data_dir)
    manifest = require_prepared(source.data_dir)
    if class_names(manifest) != source.class_names:
        raise PipelineError(
            f"{source.data_dir}: classes {class_names(manifest)} differ from the extract run's "
            f"{source.class_names}; pass the dataset it was trained on with --data"
        )
    seed_everything(config.seed)

    # The model: the extract run's best, augmentation set as asked, the top block thawed.
    model = load_image_model(source)
    augmentation = None
    if config.augment:
        augmentation = _augmentation(config, source)
    model = replace_augmentation(model, augmentation)
    trainable = unfreeze(model, source.base, config.unfreeze)
    compile_classifier(model, len(source.class_names), config.optimizer, config.learning_rate)
    if verbose:
        print(f"fine-tuning {source.base.name} from {source.run.path}; trainable: "
              f"{', '.join(trainable)}")

    # Without augmentation: the frozen part's output once (usually cached by extract already).
    splits = [split for split in SPLITS if sum(manifest["counts"][split].values())]
    if "validation" not in splits:
        raise PipelineError(f"{source.data_dir}: the validation split is empty")
    # A multi-size run's model takes any size: its frozen part has no fixed output to cache.
    fixed_size = model.input.shape[1] is not None
    cacheable = config.cache_top and not config.augment and fixed_size
    parts = cached_top_split(model, verbose) if cacheable else None
    features = None
    if parts is not None:
        features = _frozen_part_features(config, source, manifest, parts[0], splits, verbose)

    run = Run.create(config.models_dir, KIND, config.run_name)
    run.write_config(
        KIND,
        config_to_dict(config),
        source_run=str(source.run.path),
        class_names=source.class_names,
        base=source.base.name,
        weights=source.run.read_config().get("weights"),
        preprocessing=source.preprocessing,
        data_dir=str(source.data_dir),
        image_size=source.image_size,
        trainable_layers=trainable,
        trainable_parameters=int(sum(keras.ops.size(w) for w in model.trainable_weights)),
        cached_top=False if features is None else {
            "split_layer": features["train"].key.layer,
            "features": {split: cached.describe() for split, cached in features.items()},
        },
        saved_models="conv base + head, raw images in",
    )
    if parts is not None and features is not None:
        _train_cached_top(config, source, model, parts[1], features, run, verbose)
    else:
        _train_full(config, source, model, run, splits, verbose)
    return run


def _check(config: FinetuneConfig) -> None:
    """Refuse bad options before any expensive step."""
    check_run_name(config.models_dir, config.run_name)
    check_training_options(config.optimizer, config.learning_rate, config.epochs,
                           config.batch_size, config.augmentation if config.augment else None)


def open_extract_run(path: Path, data_dir: Path | None = None) -> ExtractSource:
    """The extract run at ``path`` and what it was trained with; refuses other kinds of run."""
    run = Run.open(path)
    document = run.read_config()
    kind = document.get("kind")
    if kind != EXTRACT_KIND:
        raise PipelineError(
            f"{run.path} is a {kind!r} run; finetune starts from an extract run "
            "(make one with `python cli.py extract`)"
        )
    extract = document.get("config", {})
    try:
        base = get_base(document.get("base", extract.get("base")))
        weights = document.get("weights") or {}
        return ExtractSource(
            run=run,
            base=base,
            image_size=int(extract["image_size"]),
            preprocessing=document.get("preprocessing") or weights["preprocessing"],
            class_names=list(document["class_names"]),
            data_dir=Path(data_dir or extract["data_dir"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PipelineError(
            f"{run.path}/config.json: incomplete ({error}); re-run extract"
        ) from None


def load_image_model(source: ExtractSource) -> keras.Model:
    """The extract run's best model (final if there is no best), checked to take images."""
    path = source.run.model_path("best")
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)  # recompiled here
    except Exception as error:  # a damaged or foreign file: say which
        raise PipelineError(f"{path}: cannot load ({error})") from None
    expected = (None, source.image_size, source.image_size, 3)
    names = [layer.name for layer in model.layers]
    any_size = (None, None, None, 3)  # a multi-size (SPP-net) extract run
    if tuple(model.input.shape) not in (expected, any_size) or INPUT_NAME not in names:
        raise PipelineError(
            f"{path}: takes {tuple(model.input.shape)}, not images {expected}; the extract run "
            "did not finish saving, run it again"
        )
    return model


def _augmentation(config: FinetuneConfig, source: ExtractSource) -> keras.Layer | None:
    pca = None
    if config.augmentation.pca_color:
        train = load_split(source.data_dir, "train", source.image_size, 64, cache=False)
        pca = rgb_principal_components((images.numpy() for images, _ in train.dataset),
                                       seed=config.seed)
    return build_augmentation(config.augmentation, pca, seed=config.seed)


# -- the cached top: train only what is unfrozen, on the frozen part's output ---------------------


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


def _frozen_part_features(
    config: FinetuneConfig,
    source: ExtractSource,
    manifest: dict,
    bottom: keras.Model,
    splits: list[str],
    verbose,
) -> dict[str, CachedFeatures]:
    feature_source = FeatureSource(
        source.data_dir, manifest_checksum(manifest), source.base.name, source.image_size,
        source.preprocessing, EXTRACT_BATCH_SIZE, verbose=1 if verbose else 0,
    )
    cache = FeatureCache(config.feature_cache_dir())
    return {split: image_features(cache, bottom, feature_source, split,
                                  recompute=config.recompute) for split in splits}


def _train_cached_top(
    config: FinetuneConfig,
    source: ExtractSource,
    model: keras.Model,
    top: keras.Model,
    features: dict[str, CachedFeatures],
    run: Run,
    verbose,
) -> None:
    compile_classifier(top, len(source.class_names), config.optimizer, config.learning_rate)
    train = ArrayBatches(features["train"].features, features["train"].labels,
                         config.batch_size, shuffle=True, seed=config.seed)
    validation = ArrayBatches(features["validation"].features, features["validation"].labels,
                              config.batch_size)
    outcome = fit_into_run(top, run, train, validation, epochs=config.epochs,
                           early_stopping=config.early_stopping, verbose=verbose)
    if outcome.epochs_run and not outcome.interrupted:
        # best.keras holds the best top for now: the same numbers as the full model on images.
        evaluate_into_run(run, {
            split: ArrayBatches(cached.features, cached.labels, config.batch_size)
            for split, cached in features.items() if split != "train"
        })
    _save_full_models(run, model, top)
    if outcome.epochs_run:
        plot_runs([run], run.file(CURVES))


def _save_full_models(run: Run, model: keras.Model, top: keras.Model) -> None:
    """Replace the top-only ``final``/``best`` models with the whole model (images in)."""
    # Trained through ``top``, so ``model``'s own optimizer was never built; build it so that
    # the saved state matches what loading expects.
    model.optimizer.build(model.trainable_variables)
    save_model(model, run.file(FINAL_MODEL))  # top shares its layers: model is as training left it
    best = run.file(BEST_MODEL)
    if best.is_file():
        best_top = keras.models.load_model(best, safe_mode=True, compile=False)
        top.set_weights(best_top.get_weights())
        save_model(model, best)


# -- the full model: needed with augmentation -----------------------------------------------------


def _train_full(
    config: FinetuneConfig, source: ExtractSource, model: keras.Model, run: Run, splits: list[str],
    verbose,
) -> None:
    common = dict(image_size=source.image_size, batch_size=config.batch_size)
    train = load_split(source.data_dir, "train", shuffle=True, seed=config.seed, **common)
    evaluation = {split: load_split(source.data_dir, split, cache=False, **common)
                  for split in splits if split != "train"}
    outcome = fit_into_run(model, run, train.dataset, evaluation["validation"].dataset,
                           epochs=config.epochs, early_stopping=config.early_stopping,
                           verbose=verbose)
    if outcome.epochs_run:
        if not outcome.interrupted:
            evaluate_into_run(run, {split: data.dataset for split, data in evaluation.items()})
        plot_runs([run], run.file(CURVES))

