"""Train the classic small convnet from scratch on a prepared dataset.

Read top to bottom: load the splits, build augmentation (optional), build the
convnet, train into a run directory, evaluate the best checkpoint, plot the curves.
Python users call ``train_scratch(ScratchConfig(...))`` with the same options as
``python cli.py train``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.augment import AugmentConfig, build_augmentation
from pipeline.data.dataset import load_split
from pipeline.data.pca_color import rgb_principal_components
from pipeline.models.classifier import compile_classifier
from pipeline.models.scratch import build_scratch_convnet
from pipeline.plots.curves import plot_runs
from pipeline.runs import CURVES, Run
from pipeline.workflows.config import check_training_options, config_to_dict, seed_everything
from pipeline.workflows.training import evaluate_into_run, fit_into_run

KIND = "scratch"


@dataclass
class ScratchConfig:
    """Everything a from-scratch run depends on; written to the run as config.json."""

    data_dir: Path = Path("data/cats_and_dogs_small")
    models_dir: Path = Path("models")
    run_name: str | None = None
    image_size: int = 150
    batch_size: int = 32
    epochs: int = 30
    augment: bool = False
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    dropout: float = 0.0
    l2: float = 0.0
    optimizer: str = "rmsprop"
    learning_rate: float = 1e-4
    early_stopping: int | None = None  # patience in epochs; None trains all epochs
    seed: int = 1337
    cache: bool = True


def train_scratch(config: ScratchConfig, verbose: int | str = "auto") -> Run:
    """Train, save and evaluate a from-scratch convnet; returns its run."""
    check_training_options(config.optimizer, config.learning_rate, config.epochs,
                           config.batch_size, config.augmentation if config.augment else None)
    seed_everything(config.seed)

    # Data: the training split reshuffled every epoch, validation in a fixed order.
    common = dict(image_size=config.image_size, batch_size=config.batch_size, cache=config.cache)
    train = load_split(config.data_dir, "train", shuffle=True, seed=config.seed, **common)
    validation = load_split(config.data_dir, "validation", **common)

    # Augmentation: inside the model, so it runs only while training.
    augmentation = None
    if config.augment:
        pca = None
        if config.augmentation.pca_color:
            pca = rgb_principal_components(
                (images.numpy() for images, _ in train.dataset), seed=config.seed
            )
        augmentation = build_augmentation(config.augmentation, pca, seed=config.seed)

    model = build_scratch_convnet(
        config.image_size,
        train.num_classes,
        dropout=config.dropout,
        l2=config.l2,
        augmentation=augmentation,
    )
    compile_classifier(model, train.num_classes, config.optimizer, config.learning_rate)

    run = Run.create(config.models_dir, KIND, config.run_name)
    run.write_config(
        KIND,
        config_to_dict(config),
        class_names=list(train.class_names),
        counts={"train": train.count, "validation": validation.count},
    )
    outcome = fit_into_run(
        model,
        run,
        train.dataset,
        validation.dataset,
        epochs=config.epochs,
        early_stopping=config.early_stopping,
        verbose=verbose,
    )
    if outcome.epochs_run:
        if not outcome.interrupted:
            evaluate_into_run(run, {"validation": validation.dataset})
        plot_runs([run], run.file(CURVES))
    return run
