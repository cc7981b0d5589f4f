"""Fine-tuning: thaw the top of the conv base of a trained extraction run, train at a low rate.

Read top to bottom: open the extract run and its best model (head weights kept), put
augmentation in front or take it out, unfreeze the top block (or ``unfreeze`` N layers, or
from a named layer), recompile with a low learning rate, train, evaluate, plot.

The frozen lower part of the base never changes, so its output is computed once and only
the unfrozen top trains, on those tensors (``finetune_cached.py``). Without augmentation
(``views`` 0) that output is the feature cache's (for VGG16 ``block4_pool``, which
``extract`` already cached): the same updates as the full model, at a fraction of the
cost. With ``views`` V (the default) the frozen part's output on V augmented copies of
each training image is computed once and cached (``views.py``); each epoch shows every
image through one of them: augmentation at the cost of a cached epoch, approximated by a
finite set of draws. ``augment`` is the exact path: augmentation through the full model
on every epoch. Python users call ``run_finetune(FinetuneConfig(...))`` with the same
options as ``python cli.py finetune``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import keras

from pipeline.cache.dataset_features import feature_cache
from pipeline.cache.training_views import check_views, training_views, views_record
from pipeline.cache.views import ViewBatches
from pipeline.data.augment import AugmentConfig
from pipeline.data.dataset import load_split
from pipeline.data.manifest import class_names, require_prepared
from pipeline.errors import PipelineError
from pipeline.models.bases import ConvBase, get_base
from pipeline.models.classifier import compile_classifier
from pipeline.models.saving import load_model
from pipeline.models.schedules import ScheduleOptions, compile_scheduled
from pipeline.models.transfer import INPUT_NAME, replace_augmentation, unfreeze
from pipeline.runs.folder import EXTRACT, FINETUNE, CachedTopRecord, Run, RunRecord
from pipeline.training.config import config_to_dict, seed_everything, splits_present
from pipeline.training.context import training_context
from pipeline.training.loop import augmentation_layer, train_evaluate_plot
from pipeline.training.options import FINETUNE_TRAINING, TrainingOptions
from pipeline.workflows.finetune.cached_top import (
    cached_top_split,
    frozen_part_features,
    frozen_part_source,
    train_top,
)

PCA_BATCH = 64  # images per batch while fitting the PCA colour shift: memory only
DEFAULT_VIEWS = 8  # enough draws that the top rarely sees a view twice in a short fine-tune


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run depends on; recorded in the run's config.json."""

    source_run: Path = Path("models/extract")  # an extract run folder
    data_dir: Path | None = None  # None: the dataset the extract run used
    models_dir: Path = Path("models")
    run_name: str | None = None
    unfreeze: str = "top"  # top | all | N (last N base layers) | a layer name
    views: int = DEFAULT_VIEWS  # cached augmented views per image; 0: no augmentation
    augment: bool = False  # the exact path: augmentation through the full model every epoch
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    cache_top: bool = True  # train the unfrozen top on cached tensors (views or plain)
    lr_schedule: ScheduleOptions = field(default_factory=ScheduleOptions)  # rate over epochs
    features_dir: Path | None = None  # None: <models_dir>/features
    recompute: bool = False
    training: TrainingOptions = FINETUNE_TRAINING


@dataclass(frozen=True)
class ExtractSource:
    """What fine-tuning takes over from the extract run."""

    run: Run
    record: RunRecord
    base: ConvBase
    data_dir: Path

    @property
    def num_classes(self) -> int:
        return len(self.record.class_names)


def run_finetune(config: FinetuneConfig, verbose: int | str = "auto") -> Run:
    """Fine-tune the conv base of an extract run; returns the new run."""
    config.training.validate()
    if str(config.unfreeze).strip() == "0":  # nothing of the base would train: that is extract
        raise PipelineError("`unfreeze` 0 trains only the head, which is what extract does; "
                            "give 1 or more layers, top or all")
    config.lr_schedule.validate(config.training.epochs)
    check_views(config.views)
    if config.augment or config.views:
        config.augmentation.validate()
    Run.check_name_free(config.models_dir, config.run_name)
    source = open_extract_run(config.source_run, config.data_dir)
    manifest = require_prepared(source.data_dir)
    if class_names(manifest) != source.record.class_names:
        raise PipelineError(
            f"{source.data_dir}: classes {class_names(manifest)} differ from the extract run's "
            f"{source.record.class_names}; set `data_dir` to the dataset it was trained on"
        )
    splits = splits_present(manifest, source.data_dir)
    with training_context(config.training) as policy:
        return _finetune(config, source, manifest, splits, policy, verbose)


def _finetune(config: FinetuneConfig, source: ExtractSource, manifest: dict, splits: list[str],
              policy: str, verbose) -> Run:
    options = config.training
    seed_everything(options.seed)

    # The model: the extract run's best, augmentation set as asked, the top block thawed.
    augmentation = None
    if config.augment:
        pca_images = load_split(source.data_dir, "train", source.record.image_size, PCA_BATCH,
                                cache=False).dataset
        augmentation = augmentation_layer(config.augmentation, pca_images, options.seed)
    model = replace_augmentation(load_image_model(source), augmentation, policy)
    trainable = unfreeze(model, source.base, config.unfreeze)
    compile_classifier(model, source.num_classes, options.optimizer, options.learning_rate)
    if verbose:
        print(f"fine-tuning {source.base.name} from {source.run.path}; trainable: "
              f"{', '.join(trainable)}")

    # The frozen part's output once: on validation/test (usually cached by extract already),
    # and on the training images, plain or as augmented views. A multi-size run's model
    # takes any size: its frozen part has no fixed output to cache.
    fixed_size = model.input.shape[1] is not None
    parts = None
    if config.cache_top and not config.augment and fixed_size:
        parts = cached_top_split(model, verbose)
    features, views, view_seconds = None, None, 0.0
    if parts is not None:
        plain = splits if not config.views else [s for s in splits if s != "train"]
        features = frozen_part_features(config, source, manifest, parts[0], plain, policy,
                                        verbose)
        if config.views:
            views, view_seconds = training_views(
                feature_cache(config.features_dir, config.models_dir).root, parts[0],
                frozen_part_source(source, manifest, policy, verbose), config.augmentation,
                config.views, options.seed, verbose)
    elif config.views and not config.augment and verbose:
        print("the frozen part cannot be cached here: fine-tuning without augmentation "
              "(set `augment` for augmentation through the full model)")

    run = Run.create(config.models_dir, FINETUNE, config.run_name)
    run.write_record(RunRecord(
        kind=FINETUNE, data_dir=str(source.data_dir), class_names=source.record.class_names,
        image_size=source.record.image_size, config=config_to_dict(config), precision=policy,
        base=source.base.name, weights=source.record.weights,
        preprocessing=source.record.preprocessing, parent_run=str(source.run.path),
        base_output=source.record.base_output, trainable_layers=trainable,
        trainable_parameters=int(sum(keras.ops.size(w) for w in model.trainable_weights)),
        cached_top=None if features is None else CachedTopRecord(
            next(iter(features.values())).key.layer,
            {split: cached.describe() for split, cached in features.items()}),
        views=None if views is None else views_record(views, view_seconds),
        schedule=config.lr_schedule.schedule, warmup_epochs=config.lr_schedule.warmup_epochs,
    ))
    if parts is not None and features is not None:
        train = None if views is None else ViewBatches(views, options.batch_size,
                                                       seed=options.seed)
        train_top(model, parts[1], features, run, options, source.num_classes, verbose,
                  schedule=config.lr_schedule, train=train)
    else:
        _train_full(source, model, run, splits, options, config.lr_schedule, verbose)
    return run


def open_extract_run(path: Path, data_dir: Path | None = None) -> ExtractSource:
    """The extract run at ``path`` and what it was trained with; refuses other kinds of run."""
    run = Run.open(path)
    record = run.record()
    if record.kind != EXTRACT or record.base is None:
        raise PipelineError(
            f"{run.path} is a {record.kind!r} run; finetune starts from an extract run "
            "(make one with `python cli.py extract`)"
        )
    return ExtractSource(run=run, record=record, base=get_base(record.base),
                         data_dir=Path(data_dir or record.data_dir))


def load_image_model(source: ExtractSource) -> keras.Model:
    """The extract run's best model (final if there is no best), checked to take images."""
    path = source.run.model_path("best")
    model = load_model(path)  # recompiled by the caller
    size = source.record.image_size
    expected = (None, size, size, 3)
    names = [layer.name for layer in model.layers]
    any_size = (None, None, None, 3)  # a multi-size (SPP-net) extract run
    if tuple(model.input.shape) not in (expected, any_size) or INPUT_NAME not in names:
        raise PipelineError(
            f"{path}: takes {tuple(model.input.shape)}, not images {expected}; the extract run "
            "did not finish saving, run it again"
        )
    return model


def _train_full(
    source: ExtractSource, model: keras.Model, run: Run, splits: list[str],
    options: TrainingOptions, schedule: ScheduleOptions, verbose,
) -> None:
    """The whole model on images: the exact augmentation path, or a graph that cannot split."""
    common = dict(image_size=source.record.image_size, batch_size=options.batch_size)
    train = load_split(source.data_dir, "train", shuffle=True, seed=options.seed, **common)
    steps = math.ceil(train.count / options.batch_size)
    compile_scheduled(model, source.num_classes, options.optimizer, options.learning_rate,
                      schedule, steps_per_epoch=steps, epochs=options.epochs,
                      ema_momentum=options.ema_momentum)
    evaluation = {split: load_split(source.data_dir, split, cache=False, **common).dataset
                  for split in splits if split != "train"}
    train_evaluate_plot(model, run, train.dataset, evaluation, options, verbose)
