"""Train a small convnet from scratch on a prepared dataset (the book's two: see
``pipeline.models.scratch``).

Read top to bottom: load the splits, build augmentation (optional), build the
convnet, train into a run directory, evaluate the best checkpoint, plot the curves.
Python users call ``train_scratch(ScratchConfig(...))`` with the same options as
``python cli.py train``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.augment import AugmentConfig
from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.classifier import compile_classifier
from pipeline.models.scratch import architecture, build_scratch_convnet
from pipeline.runs.folder import SCRATCH, Run, RunRecord
from pipeline.training.config import config_to_dict, seed_everything
from pipeline.training.context import training_context
from pipeline.training.loop import (
    augmentation_in_model,
    augmentation_layer,
    augmented,
    train_evaluate_plot,
)
from pipeline.training.options import SCRATCH_TRAINING, TrainingOptions


@dataclass
class ScratchConfig:
    """Everything a from-scratch run depends on; recorded in the run's config.json."""

    data_dir: Path = Path("data/cats_and_dogs_small")
    models_dir: Path = Path("models")
    run_name: str | None = None
    architecture: str = "convnet"
    image_size: int | None = None  # the architecture's own (150 or 180, the book's)
    augment: bool = False
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    dropout: float = 0.0
    l2: float = 0.0
    cache: bool = True  # keep decoded images in memory when they fit
    training: TrainingOptions = SCRATCH_TRAINING


def train_scratch(config: ScratchConfig, verbose: int | str = "auto") -> Run:
    """Train, save and evaluate a from-scratch convnet; returns its run."""
    options = config.training
    options.validate()
    chosen = architecture(config.architecture)
    config = dataclasses.replace(config, image_size=config.image_size or chosen.image_size)
    if not 0 <= config.dropout < 1:  # NaN fails both comparisons
        raise PipelineError(f"`dropout` must be in [0, 1), got {config.dropout}")
    if not 0 <= config.l2 < math.inf:
        raise PipelineError(f"`l2` must be a finite number, 0 or more, got {config.l2}")
    if config.augment:
        config.augmentation.validate()
    Run.check_name_free(config.models_dir, config.run_name)
    with training_context(options) as policy:
        return _train(config, policy, verbose)


def _train(config: ScratchConfig, policy: str, verbose: int | str) -> Run:
    options = config.training
    seed_everything(options.seed)

    # Data: the training split reshuffled every epoch, validation in a fixed order.
    common = dict(image_size=config.image_size, batch_size=options.batch_size, cache=config.cache)
    train = load_split(config.data_dir, "train", shuffle=True, seed=options.seed, **common)
    validation = load_split(config.data_dir, "validation", **common)

    # Augmentation, only while training: the model's first layers, or mapped over the
    # training batches (see AugmentConfig.placement: where it measured fastest).
    augmentation, train_batches = None, train.dataset
    if config.augment:
        augmentation = augmentation_layer(config.augmentation, train.dataset, options.seed)
        if not augmentation_in_model(config.augmentation):
            train_batches, augmentation = augmented(train.dataset, augmentation), None
            if verbose:
                print("augmentation: in the tf.data pipeline (faster than in the model here)")

    model = build_scratch_convnet(config.image_size, train.num_classes,
                                  architecture_name=config.architecture, dropout=config.dropout,
                                  l2=config.l2, augmentation=augmentation)
    compile_classifier(model, train.num_classes, options.optimizer, options.learning_rate,
                       ema_momentum=options.ema_momentum)

    run = Run.create(config.models_dir, SCRATCH, config.run_name)
    run.write_record(RunRecord(
        kind=SCRATCH, data_dir=str(config.data_dir), class_names=list(train.class_names),
        image_size=config.image_size, config=config_to_dict(config), precision=policy,
        counts={"train": train.count, "validation": validation.count},
    ))
    train_evaluate_plot(model, run, train_batches, {"validation": validation.dataset}, options,
                        verbose)
    return run
