"""Train the classic small convnet from scratch on a prepared dataset.

Read top to bottom: load the splits, build augmentation (optional), build the
convnet, train into a run directory, evaluate the best checkpoint, plot the curves.
Python users call ``train_scratch(ScratchConfig(...))`` with the same options as
``python cli.py train``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.augment import AugmentConfig
from pipeline.data.dataset import load_split
from pipeline.models.classifier import compile_classifier
from pipeline.models.scratch import build_scratch_convnet
from pipeline.runs import SCRATCH, Run, RunRecord
from pipeline.workflows.config import config_to_dict, seed_everything
from pipeline.workflows.options import SCRATCH_TRAINING, TrainingOptions
from pipeline.workflows.precision import precision_policy
from pipeline.workflows.training import augmentation_layer, train_evaluate_plot


@dataclass
class ScratchConfig:
    """Everything a from-scratch run depends on; recorded in the run's config.json."""

    data_dir: Path = Path("data/cats_and_dogs_small")
    models_dir: Path = Path("models")
    run_name: str | None = None
    image_size: int = 150
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
    if config.augment:
        config.augmentation.validate()
    Run.check_name_free(config.models_dir, config.run_name)
    with precision_policy(options.precision) as policy:
        return _train(config, policy, verbose)


def _train(config: ScratchConfig, policy: str, verbose: int | str) -> Run:
    options = config.training
    seed_everything(options.seed)

    # Data: the training split reshuffled every epoch, validation in a fixed order.
    common = dict(image_size=config.image_size, batch_size=options.batch_size, cache=config.cache)
    train = load_split(config.data_dir, "train", shuffle=True, seed=options.seed, **common)
    validation = load_split(config.data_dir, "validation", **common)

    # Augmentation: inside the model, so it runs only while training.
    augmentation = None
    if config.augment:
        augmentation = augmentation_layer(config.augmentation, train.dataset, options.seed)

    model = build_scratch_convnet(config.image_size, train.num_classes, dropout=config.dropout,
                                  l2=config.l2, augmentation=augmentation)
    compile_classifier(model, train.num_classes, options.optimizer, options.learning_rate)

    run = Run.create(config.models_dir, SCRATCH, config.run_name)
    run.write_record(RunRecord(
        kind=SCRATCH, data_dir=str(config.data_dir), class_names=list(train.class_names),
        image_size=config.image_size, config=config_to_dict(config), precision=policy,
        counts={"train": train.count, "validation": validation.count},
    ))
    train_evaluate_plot(model, run, train.dataset, {"validation": validation.dataset}, options,
                        verbose)
    return run
