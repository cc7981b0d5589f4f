"""What every way of extracting shares: the base's defaults filled in, the checks, the run
record, and the trained head put back on the conv base.

The sub-paths (``features``, ``images``, ``views``) import from here and ``config``; the
dispatcher (``workflow.run_extract``) imports them all. Nothing here imports upward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from pipeline.cache.training_views import check_views
from pipeline.data.sizes import check_image_size
from pipeline.errors import PipelineError
from pipeline.models.bases import ConvBase, get_base
from pipeline.models.classifier import compile_classifier
from pipeline.models.head_options import head_learning_rate
from pipeline.models.heads import SIZE_AGNOSTIC_HEADS, check_head
from pipeline.models.saving import load_model, save_model
from pipeline.models.transfer import attach_head
from pipeline.models.weights import WeightsChoice
from pipeline.runs.folder import BEST_MODEL, EXTRACT, FINAL_MODEL, Run, RunRecord, WeightsRecord
from pipeline.training.config import config_to_dict
from pipeline.training.mixing_options import check_mixing_placement, refuse_mixing
from pipeline.training.options import TrainingOptions
from pipeline.workflows.extract.config import ExtractConfig, trains_on_images

SAMPLE_IMAGES = 256  # training images whose features start a NetVLAD head (k-means)


def with_base_defaults(config: ExtractConfig) -> ExtractConfig:
    """``config`` with what was left at None filled in, the one place this happens: the
    base's own image size and head, the head's learning rate and extraction's batch size
    (``ExtractConfig.TRAINING_DEFAULTS``). What the run records and trains with."""
    check_image_size(config.image_size)
    for size in config.multi_size:
        check_image_size(size, "multi_size")
    base = get_base(config.base)
    head = config.head or base.default_head
    training = config.training.with_defaults(ExtractConfig.TRAINING_DEFAULTS)
    if training.learning_rate is None:
        training = dataclasses.replace(training, learning_rate=head_learning_rate(head))
    return dataclasses.replace(
        config, head=head, training=training,
        image_size=base.default_image_size if config.image_size is None else config.image_size,
    )


def check_config(config: ExtractConfig) -> ConvBase:
    """Refuse bad options of a resolved ``config`` before any expensive step; its base."""
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
    if not trains_on_images(config):
        refuse_mixing(config.training, "this extraction trains the head on cached features "
                      "of the conv base (on cached augmented views with `augment` and `views` "
                      "above 0)", "give `augment` with `views` 0 to train on images augmented "
                      "on the fly through the frozen base (slow)")
    check_mixing_placement(config.training,
                           config.augmentation.placement if config.augment else None)
    return base


def extract_record(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, names: list[str],
    policy: str, **fields,
) -> RunRecord:
    """The run record every way of extracting shares."""
    return RunRecord(
        kind=EXTRACT, data_dir=str(config.data_dir), class_names=list(names),
        image_size=config.image_size, config=config_to_dict(config), precision=policy,
        base=base.name, weights=WeightsRecord(weights.source, weights.detail),
        preprocessing=weights.preprocessing, schedule=config.lr_schedule.schedule,
        warmup_epochs=config.lr_schedule.warmup_epochs, **fields,
    )


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
    ``views`` trains the base's top block too, and keeps only the head layers).
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
