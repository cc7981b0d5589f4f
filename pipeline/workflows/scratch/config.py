"""What a from-scratch run depends on (``ScratchConfig``), every default defined here once.

Light on purpose (no TensorFlow): the command line reads these defaults for its options and
``--help``; ``workflow.train_scratch`` trains from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pipeline.data.augment_options import AugmentConfig
from pipeline.data.defaults import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR
from pipeline.data.sizes import check_image_size
from pipeline.training.options import TrainingDefaults, TrainingOptions


@dataclass
class ScratchConfig:
    """Everything a from-scratch run depends on; recorded in the run's config.json.

    ``image_size`` None: the architecture's own (150 or 180, the book's); ``training``'s
    learning rate and batch size left at None: ``TRAINING_DEFAULTS`` (the book's 1e-4, 32).
    """

    TRAINING_DEFAULTS: ClassVar[TrainingDefaults] = TrainingDefaults(batch_size=32,
                                                                     learning_rate=1e-4)

    data_dir: Path = DEFAULT_DATA_DIR
    models_dir: Path = DEFAULT_MODELS_DIR
    run_name: str | None = None
    architecture: str = "convnet"  # pipeline.models.scratch.ARCHITECTURES
    image_size: int | None = None  # the architecture's own (150 or 180, the book's)
    augment: bool = False  # augmentation on (on the fly: every epoch new draws)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    dropout: float = 0.0
    l2: float = 0.0
    cache: bool = True  # keep decoded images in memory when they fit
    training: TrainingOptions = field(default_factory=TrainingOptions)


def with_defaults(config: ScratchConfig, image_size: int) -> ScratchConfig:
    """``config`` with the architecture's ``image_size`` and the workflow's learning rate and
    batch size where they were left at None: what the run records and trains with."""
    check_image_size(config.image_size)
    return dataclasses.replace(
        config, image_size=image_size if config.image_size is None else config.image_size,
        training=config.training.with_defaults(ScratchConfig.TRAINING_DEFAULTS),
    )
