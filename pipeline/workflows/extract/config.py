"""What an extraction run depends on (``ExtractConfig``), every default defined here once.

Light on purpose (no TensorFlow): the command line reads these defaults for its options and
``--help``; the sub-paths (``features``, ``images``, ``views``) and ``common`` build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pipeline.data.augment_options import DEFAULT_VIEWS, AugmentConfig
from pipeline.data.defaults import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR
from pipeline.models.head_options import HeadOptions
from pipeline.models.schedules import ScheduleOptions
from pipeline.training.options import TrainingDefaults, TrainingOptions

DEFAULT_BASE = "vgg16"  # the book's conv base (``pipeline.models.bases.BASES`` has the others)


@dataclass
class ExtractConfig:
    """Everything an extraction run depends on; recorded in the run's config.json.

    None means the base's own: ``image_size`` (VGG16: the book's 150), ``head`` (VGG16: the
    book's flatten, the others gap), ``preprocessing`` (what the weights need), and in
    ``training`` the learning rate (by head: 1e-3 for gap, 2e-5 for the others) and the
    batch size (``TRAINING_DEFAULTS``).

    ``augment`` turns augmentation on (default off: features computed once, the fast way);
    ``views`` is then the number of cached augmented views per training image, 0 augments
    on the fly through the whole frozen base every epoch (the exact path; slow).
    """

    TRAINING_DEFAULTS: ClassVar[TrainingDefaults] = TrainingDefaults(batch_size=20)

    data_dir: Path = DEFAULT_DATA_DIR
    models_dir: Path = DEFAULT_MODELS_DIR
    run_name: str | None = None
    base: str = DEFAULT_BASE
    weights: str = "auto"  # auto | imagenet | lpips | none | a file
    preprocessing: str | None = None  # None: what the weights need
    image_size: int | None = None  # None: the base's own size (VGG16: the book's 150)
    head: str | None = None  # None: the base's own (VGG16: the book's flatten; others gap)
    head_options: HeadOptions = field(default_factory=HeadOptions)
    multi_size: tuple[int, ...] = ()  # train on images of these sizes (SPP-net); gap/spp/netvlad
    augment: bool = False  # augmentation on (False: the fast way, features computed once)
    views: int = DEFAULT_VIEWS  # with augment: cached augmented views per image; 0: on the fly
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    lr_schedule: ScheduleOptions = field(default_factory=ScheduleOptions)  # rate over epochs
    features_dir: Path | None = None  # feature cache; None: <models_dir>/features
    recompute: bool = False  # ignore cached features and compute them again
    training: TrainingOptions = field(default_factory=TrainingOptions)


def trains_on_images(config: ExtractConfig) -> bool:
    """Whether the head trains on batches of images (mixup and CutMix need them):
    ``augment`` with ``views`` 0 (on the fly), or ``multi_size``; else on cached features
    or cached views (where the base cannot be split for views, it falls back to images,
    which is not known here)."""
    return bool((config.augment and not config.views) or config.multi_size)
