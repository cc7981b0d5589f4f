"""Train a small convnet from scratch on a prepared dataset (the book's two: see
``pipeline.models.scratch``).

Read top to bottom: load the splits, build augmentation (optional), build the
convnet, train into a run directory, evaluate the best checkpoint, plot the curves.
Python users call ``train_scratch(ScratchConfig(...))`` with the same options as
``python cli.py train``.
"""

from __future__ import annotations

import math

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.scratch import architecture, build_scratch_convnet
from pipeline.runs.folder import SCRATCH, Run, RunRecord
from pipeline.training.config import config_to_dict, seed_everything
from pipeline.training.context import training_context
from pipeline.training.loop import (
    augmentation_in_model,
    augmentation_layer,
    augmented,
    augmented_and_mixed,
)
from pipeline.training.mixing_options import check_mixing_placement
from pipeline.training.skeleton import Callbacks, train_new_run
from pipeline.workflows.scratch.config import ScratchConfig, with_defaults


def train_scratch(config: ScratchConfig, verbose: int | str = "auto",
                  callbacks: Callbacks = ()) -> Run:
    """Train, save and evaluate a from-scratch convnet into a new run; returns the run.

    Args:
        config: what to train; ``image_size`` None is the architecture's own, the learning
            rate and batch size left at None are the book's (1e-4, 32).
        verbose: as for ``pipeline.workflows.extract.workflow.run_extract``.
        callbacks: your Keras callbacks for ``fit``, after the run's own (history, checkpoints).

    Giving the ``run_name`` of an interrupted run again continues it. For example::

        config = ScratchConfig(data_dir=Path("data/flowers"), augment=True, dropout=0.5)
        run = train_scratch(config)                    # models/scratch-<date>-<time>/
        print(run.summary())
    """
    chosen = architecture(config.architecture)
    config = with_defaults(config, chosen.image_size)
    config.training.validate()
    if not 0 <= config.dropout < 1:  # NaN fails both comparisons
        raise PipelineError(f"`dropout` must be in [0, 1), got {config.dropout}")
    if not 0 <= config.l2 < math.inf:
        raise PipelineError(f"`l2` must be a finite number, 0 or more, got {config.l2}")
    if config.augment:
        config.augmentation.validate()
    check_mixing_placement(config.training,
                           config.augmentation.placement if config.augment else None)
    Run.check_name_free(config.models_dir, config.run_name)
    with training_context(config.training) as policy:
        return _train(config, policy, verbose, callbacks)


def _train(config: ScratchConfig, policy: str, verbose: int | str,
           callbacks: Callbacks) -> Run:
    options = config.training
    seed_everything(options.seed)

    # Data: the training split reshuffled every epoch, validation in a fixed order.
    common = dict(image_size=config.image_size, batch_size=options.batch_size, cache=config.cache)
    train = load_split(config.data_dir, "train", shuffle=True, seed=options.seed, **common)
    validation = load_split(config.data_dir, "validation", **common)

    # Augmentation, only while training: the model's first layers, or mapped over the
    # training batches (see AugmentConfig.placement: where it measured fastest; always
    # there with mixup or CutMix, which mix the augmented images and their labels).
    augmentation, train_batches = None, train.dataset
    if config.augment:
        augmentation = augmentation_layer(config.augmentation, train.dataset, options.seed)
    if options.mixes:
        train_batches = augmented_and_mixed(train.dataset, augmentation, options,
                                            train.num_classes, verbose)
        augmentation = None
    elif config.augment and not augmentation_in_model(config.augmentation):
        train_batches, augmentation = augmented(train.dataset, augmentation), None
        if verbose:
            print("augmentation: in the tf.data pipeline (faster than in the model here)")

    model = build_scratch_convnet(config.image_size, train.num_classes,
                                  architecture_name=config.architecture, dropout=config.dropout,
                                  l2=config.l2, augmentation=augmentation)
    record = RunRecord(
        kind=SCRATCH, data_dir=str(config.data_dir), class_names=list(train.class_names),
        image_size=config.image_size, config=config_to_dict(config), precision=policy,
        counts={"train": train.count, "validation": validation.count},
    )
    return train_new_run(
        model, record, train_batches, {"validation": validation.dataset},
        models_dir=config.models_dir, run_name=config.run_name, options=options,
        steps_per_epoch=math.ceil(train.count / options.batch_size), callbacks=callbacks,
        verbose=verbose,
    )
