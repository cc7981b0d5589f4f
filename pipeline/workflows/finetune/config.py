"""What a fine-tuning run depends on (``FinetuneConfig``), every default defined here once.

Light on purpose (no TensorFlow): the command line reads these defaults for its options and
``--help``; ``source``, ``cached_top`` and ``workflow`` build on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pipeline.data.augment_options import DEFAULT_VIEWS, AugmentConfig
from pipeline.data.defaults import DEFAULT_MODELS_DIR
from pipeline.models.drop_path_options import NO_DROP_PATH
from pipeline.models.schedules import ScheduleOptions
from pipeline.training.options import TrainingDefaults, TrainingOptions

PCA_BATCH = 64  # images per batch while fitting the PCA colour shift: memory only


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run depends on; recorded in the run's config.json.

    ``augment`` turns augmentation on (the default); ``views`` is the number of cached
    augmented views per training image (the frozen part's output on each computed once),
    0 augments on the fly through the full model every epoch (the exact path; slow).
    Without ``augment`` the unfrozen top trains on the frozen part's plain cached output.
    ``drop_path`` above 0: stochastic depth in the residual blocks that train, the last at
    that rate (``pipeline.models.drop_path``).
    ``training``'s learning rate and batch size left at None: ``TRAINING_DEFAULTS``.
    """

    TRAINING_DEFAULTS: ClassVar[TrainingDefaults] = TrainingDefaults(batch_size=20,
                                                                     learning_rate=1e-5)

    source_run: Path = DEFAULT_MODELS_DIR / "extract"  # an extract run folder
    data_dir: Path | None = None  # None: the dataset the extract run used
    models_dir: Path = DEFAULT_MODELS_DIR
    run_name: str | None = None
    unfreeze: str = "top"  # top | all | N (last N base layers) | a layer name
    drop_path: float = NO_DROP_PATH  # the last residual block's drop rate in training; 0: off
    augment: bool = True  # augmentation on (False: the plain cached top)
    views: int = DEFAULT_VIEWS  # with augment: cached augmented views per image; 0: on the fly
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    cache_top: bool = True  # train the unfrozen top on cached tensors (views or plain)
    lr_schedule: ScheduleOptions = field(default_factory=ScheduleOptions)  # rate over epochs
    start_size: int | None = None  # progressive resizing: first half of the epochs at this size
    features_dir: Path | None = None  # None: <models_dir>/features
    recompute: bool = False
    training: TrainingOptions = field(default_factory=TrainingOptions)


def with_defaults(config: FinetuneConfig) -> FinetuneConfig:
    """``config`` with fine-tuning's learning rate and batch size where they were left at
    None: the one place this happens; what the run records and trains with."""
    return dataclasses.replace(
        config, training=config.training.with_defaults(FinetuneConfig.TRAINING_DEFAULTS))


def trains_on_images(config: FinetuneConfig) -> bool:
    """Whether the training batches are images (mixup and CutMix need them): augmented on
    the fly (``augment`` with ``views`` 0), or through the full model (``cache_top`` off);
    else the unfrozen top trains on the frozen part's cached output, views or plain (where
    the graph cannot be split there, it falls back to images, which is not known here)."""
    return bool((config.augment and not config.views) or not config.cache_top)
