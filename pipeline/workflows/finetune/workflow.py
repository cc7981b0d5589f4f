"""Fine-tuning: thaw the top of the conv base of a trained extraction run, train at a low rate.

Read top to bottom: open the extract run and its best model (head weights kept, ``source``),
put augmentation in front or take it out, unfreeze the top block (or ``unfreeze`` N layers,
or from a named layer), train at a low learning rate, evaluate, plot.

The frozen lower part of the base never changes, so its output is computed once and only
the unfrozen top trains, on those tensors (``cached_top``). Without ``augment`` that output
is the feature cache's (for VGG16 ``block4_pool``, which ``extract`` already cached): the
same updates as the full model, at a fraction of the cost. With ``augment`` and ``views`` V
(the default) the frozen part's output on V augmented copies of each training image is
computed once and cached (``pipeline.cache.views``); each epoch shows every image through
one of them: augmentation at the cost of a cached epoch, approximated by a finite set of
draws. ``views`` 0 augments on the fly: through the full model on every epoch (the exact
path; also taken where the frozen part cannot be cached). Python users call
``run_finetune(FinetuneConfig(...))`` with the same options as ``python cli.py finetune``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from pipeline.cache.dataset_features import feature_cache
from pipeline.cache.training_views import check_views, training_views, views_record
from pipeline.data.dataset import load_split
from pipeline.data.manifest import class_names, require_prepared
from pipeline.errors import PipelineError
from pipeline.layers.training_resize import TrainingResize
from pipeline.models.drop_path import check_drop_path_trains
from pipeline.models.drop_path_options import check_drop_path
from pipeline.models.transfer import replace_augmentation, unfreeze
from pipeline.runs.folder import FINETUNE, CachedTopRecord, Run, RunRecord
from pipeline.training.config import config_to_dict, seed_everything, splits_present
from pipeline.training.context import training_context
from pipeline.training.loop import augmentation_layer, augmented_and_mixed
from pipeline.training.mixing_options import check_mixing_placement, refuse_mixing
from pipeline.training.progressive_resize import ProgressiveResize, training_resize_layer
from pipeline.training.progressive_resize_options import check_start_size, resize_schedule
from pipeline.training.skeleton import Callbacks, train_new_run
from pipeline.workflows.finetune.cached_top import (
    cached_top_split,
    frozen_part_features,
    frozen_part_source,
    train_top,
)
from pipeline.workflows.finetune.config import (
    PCA_BATCH,
    FinetuneConfig,
    trains_on_images,
    with_defaults,
)
from pipeline.workflows.finetune.source import ExtractSource, load_image_model, open_extract_run

# Re-exported: the names callers imported from here before the package was split.
__all__ = ["ExtractSource", "FinetuneConfig", "load_image_model", "open_extract_run",
           "run_finetune", "with_defaults"]


def run_finetune(config: FinetuneConfig, verbose: int | str = "auto",
                 callbacks: Callbacks = ()) -> Run:
    """Fine-tune the conv base of an extract run into a new run; returns the new run.

    Args:
        config: what to fine-tune (``source_run``: the extract run's folder) and how; the
            learning rate and batch size left at None are fine-tuning's own (1e-5, 20).
        verbose: as for ``run_extract``: ``fit``'s verbosity, 0 quiet.
        callbacks: your Keras callbacks for ``fit``, as for ``run_extract``.

    Giving the ``run_name`` of an interrupted run again continues it. For example::

        extract = run_extract(ExtractConfig(data_dir=Path("data/flowers")))
        run = run_finetune(FinetuneConfig(source_run=extract.path, unfreeze="top"))
        print(run.summary())
    """
    config = with_defaults(config)
    config.training.validate()
    if str(config.unfreeze).strip() == "0":  # nothing of the base would train: that is extract
        raise PipelineError("`unfreeze` 0 trains only the head, which is what extract does; "
                            "give 1 or more layers, top or all")
    config.lr_schedule.validate(config.training.epochs)
    check_views(config.views)
    check_drop_path(config.drop_path)
    if config.augment:
        config.augmentation.validate()
    if not trains_on_images(config):
        refuse_mixing(config.training, "this fine-tuning trains the unfrozen top on the cached "
                      "output of the frozen part (augmented views with `views` above 0, plain "
                      "without `augment`)", "give `augment` with `views` 0 to train on images "
                      "augmented on the fly")
    check_mixing_placement(config.training,
                           config.augmentation.placement if config.augment else None)
    if config.start_size is not None and not trains_on_images(config):
        raise PipelineError("`start_size` (progressive resizing) needs the base to train on "
                            "images: give `views` 0 with `augment`, or turn `cache_top` off")
    Run.check_name_free(config.models_dir, config.run_name)
    source = open_extract_run(config.source_run, config.data_dir)
    manifest = require_prepared(source.data_dir)
    if class_names(manifest) != source.record.class_names:
        raise PipelineError(
            f"{source.data_dir}: classes {class_names(manifest)} differ from the extract run's "
            f"{source.record.class_names}; set `data_dir` to the dataset it was trained on"
        )
    splits = splits_present(manifest, source.data_dir)
    check_start_size(config.start_size, source.record.image_size, source.base.min_image_size)
    with training_context(config.training, trains_base=True) as policy:  # auto: see precision
        return _finetune(config, source, manifest, splits, policy, verbose, callbacks)


def _finetune(config: FinetuneConfig, source: ExtractSource, manifest: dict, splits: list[str],
              policy: str, verbose, callbacks: Callbacks) -> Run:
    options = config.training
    seed_everything(options.seed)

    # The model: the extract run's best, augmentation in front when it augments on the fly
    # (in the tf.data pipeline instead with mixup or CutMix, which mix the augmented images
    # and their labels), the top block thawed. The frozen part's output is cached where it
    # can be: on validation/test (usually cached by extract already), and on the training
    # images, plain or as augmented views. A multi-size run's model takes any size: nothing
    # fixed to cache.
    on_the_fly = config.augment and not config.views
    model, trainable = _model(config, source, policy, augment=on_the_fly and not options.mixes)
    parts = None
    if config.cache_top and not on_the_fly and model.input.shape[1] is not None:
        parts = cached_top_split(model, verbose)
    if parts is None and config.augment and not on_the_fly:
        if verbose:
            print("the frozen part cannot be cached here: augmenting on the fly through the "
                  "full model instead of on cached views")
        on_the_fly = True
        model, trainable = _model(config, source, policy, augment=not options.mixes)
    if verbose:
        print(f"fine-tuning {source.base.name} from {source.run.path}; trainable: "
              f"{', '.join(trainable)}")

    features, views, view_seconds = None, None, 0.0
    if parts is not None:
        plain = splits if not config.augment else [s for s in splits if s != "train"]
        features = frozen_part_features(config, source, manifest, parts[0], plain, policy,
                                        verbose)
        if config.augment:
            views, view_seconds = training_views(
                feature_cache(config.features_dir, config.models_dir).root, parts[0],
                frozen_part_source(source, manifest, policy, verbose), config.augmentation,
                config.views, options.seed, verbose)

    record = RunRecord(
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
    )
    if parts is not None and features is not None:
        return train_top(model, parts[1], features, record, config, verbose, views=views,
                         callbacks=callbacks)
    return _train_full(config, source, model, record, splits, verbose, callbacks)


def _model(config: FinetuneConfig, source: ExtractSource, policy: str, *,
           augment: bool) -> tuple[keras.Model, list[str]]:
    """The extract run's best model under ``policy``, augmentation in front with ``augment``
    (none otherwise), the base thawed as ``config.unfreeze`` says, its residual blocks
    dropping paths up to ``config.drop_path`` (refused where none trains); the trainable
    layers."""
    augmentation = _augmentation(config, source) if augment else None
    if config.start_size is not None:  # the training-only resize goes with the augmentation
        augmentation = keras.Sequential(
            [*(augmentation.layers if augmentation is not None else []), TrainingResize()])
    model = replace_augmentation(load_image_model(source), augmentation, policy,
                                 drop_path=config.drop_path)
    trainable = unfreeze(model, source.base, config.unfreeze)
    check_drop_path_trains(model, config.drop_path, source.base.name, config.unfreeze)
    return model, trainable


def _augmentation(config: FinetuneConfig, source: ExtractSource) -> keras.Layer | None:
    """``config``'s augmentation layers, the PCA colour shift fitted on the training images."""
    pca_images = load_split(source.data_dir, "train", source.record.image_size, PCA_BATCH,
                            cache=False).dataset
    return augmentation_layer(config.augmentation, pca_images, config.training.seed)


def _train_full(
    config: FinetuneConfig, source: ExtractSource, model: keras.Model, record: RunRecord,
    splits: list[str], verbose, callbacks: Callbacks,
) -> Run:
    """The whole model on images: augmentation on the fly, or a graph that cannot split.
    With mixup or CutMix the augmentation is not in ``model``: the training batches are
    augmented, then mixed, in the tf.data pipeline."""
    options = config.training
    common = dict(image_size=source.record.image_size, batch_size=options.batch_size)
    train = load_split(source.data_dir, "train", shuffle=True, seed=options.seed, **common)
    evaluation = {split: load_split(source.data_dir, split, cache=False, **common).dataset
                  for split in splits if split != "train"}
    train_batches = train.dataset
    if options.mixes:
        augmentation = _augmentation(config, source) if config.augment else None
        train_batches = augmented_and_mixed(train_batches, augmentation, options,
                                            train.num_classes, verbose)
    if config.start_size is not None:
        callbacks = (*callbacks, _progressive_resize(config, source, model, verbose))
    return train_new_run(
        model, record, train_batches, evaluation, models_dir=config.models_dir,
        run_name=config.run_name, options=options, schedule=config.lr_schedule,
        steps_per_epoch=math.ceil(train.count / options.batch_size), callbacks=callbacks,
        verbose=verbose,
    )


def _progressive_resize(config: FinetuneConfig, source: ExtractSource, model: keras.Model,
                        verbose) -> ProgressiveResize:
    """The callback that trains the first half of the epochs at ``config.start_size``; checks
    first, on one image, that the model's head takes the smaller feature map."""
    layer = training_resize_layer(model)
    assert layer is not None, "the model was built without its TrainingResize layer"
    size, start = source.record.image_size, int(config.start_size or 0)
    layer.size = start
    try:
        model(np.zeros((1, size, size, 3), "float32"), training=True)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        raise PipelineError(
            f"`start_size` {start}: this run's head needs the {size} px feature map "
            f"({str(error).splitlines()[0][:120]}); progressive resizing needs a pooling head "
            "such as gap, or leave `start_size` out") from None
    finally:
        layer.size = None
    schedule = resize_schedule(start, size, config.training.epochs)
    if verbose:
        print(f"progressive resizing: epochs 1-{schedule.count(start)} at {start} px, "
              f"the rest at {size} px")
    return ProgressiveResize(layer, schedule, size)
