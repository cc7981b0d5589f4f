"""What ``run`` trains: the presets, and the transfer-learning rule of thumb when none is given.

A preset fixes the steps, the conv base, the image size, the epochs of each step and how
much of the base fine-tuning thaws; every value can be overridden one by one.

Without a preset, the rule of thumb (the Keras/CS231n advice) picks how much of the base
to train from the number of training images: few images cannot retrain millions of
pretrained weights without overfitting, so the base stays frozen and only a head learns
on its cached features; with more images the top block can adapt; with many, all of it.
Light on purpose (no TensorFlow): the command line prints these values in ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import PipelineError

# The chapter's steps, each trained into its own folder of that name. Not run kinds
# (``pipeline.runs.record``): two steps train each of the kinds scratch and extract.
STEP_SCRATCH, STEP_SCRATCH_AUGMENT = "scratch", "scratch-augment"
STEP_EXTRACT, STEP_EXTRACT_AUGMENT = "extract", "extract-augment"
STEP_FINETUNE, STEP_EVALUATE = "finetune", "evaluate"
# A second conv base (``SECOND_BASE``), extracted then fine-tuned as the first, and the
# ensemble: the mean of the two fine-tuned models' predictions, one saved model.
STEP_EXTRACT_SECOND, STEP_FINETUNE_SECOND = "extract-2", "finetune-2"
STEP_ENSEMBLE = "ensemble"
BOOK_STEPS = (STEP_SCRATCH, STEP_SCRATCH_AUGMENT, STEP_EXTRACT, STEP_EXTRACT_AUGMENT,
              STEP_FINETUNE)  # the book's chapter: one step per strategy it trains
EPOCH_STEPS = (*BOOK_STEPS, STEP_EXTRACT_SECOND, STEP_FINETUNE_SECOND)  # the steps that fit
TRAINING_STEPS = (*EPOCH_STEPS, STEP_ENSEMBLE)  # every step that makes a model
STEPS = (*TRAINING_STEPS, STEP_EVALUATE)  # the order they run in
DEFAULT_STEPS = (STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE)
ALL = "all"  # the book's every training step, then evaluate
# What each step starts from or is made of: its digest includes theirs, so redoing one
# redoes what depends on it.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    STEP_FINETUNE: (STEP_EXTRACT,),
    STEP_FINETUNE_SECOND: (STEP_EXTRACT_SECOND,),
    STEP_ENSEMBLE: (STEP_FINETUNE, STEP_FINETUNE_SECOND),
}

# The rule of thumb's thresholds, in training images (all classes together).
SMALL_DATASET = 5_000  # below: freeze the whole base, extract only (cached features)
MEDIUM_DATASET = 50_000  # below: unfreeze the top block; at or above: train the whole base


@dataclass(frozen=True)
class Preset:
    """The values a preset sets; ``epochs`` per training step."""

    name: str
    description: str
    steps: tuple[str, ...]
    base: str
    image_size: int | None  # None: each base at its own size
    epochs: dict[str, int] = field(default_factory=dict)
    unfreeze: str = "top"
    augment: bool | None = None  # whether fine-tuning augments; None: finetune's default (on)
    views: int | None = None  # cached augmented views per image; None: the workflows' default
    keep_best: bool = False  # every candidate step is measured; the best on validation is kept


# The base `run` uses unless a preset or the user names another: the one that validated best on
# the classic split (bench/lite_report.py: Lite1 features 99.5% validation, above Lite0, Lite2
# and VGG16), at a fraction of VGG16's cost, with weights that need no network.
RECOMMENDED_BASE = "efficientnet_lite1"
# The rule of thumb's second base for a small dataset, whose fine-tuned model is averaged with
# the first's: the fastest of the Lite bases (224 px), so both fit the default budget. On
# Oxford 17 Flowers (0.6,0.2,0.2) the mean of Lite1 and Lite0 fine-tuned validated 96.3%
# against 94.9% for each alone (Lite1 with Lite2 also 96.3%, at twice Lite0's time;
# docs/results.md).
SECOND_BASE = "efficientnet_lite0"


def second_base_for(base: str) -> str:
    """The second base beside ``base``: ``SECOND_BASE``, or the recommended one when the first
    is already that."""
    return RECOMMENDED_BASE if base == SECOND_BASE else SECOND_BASE

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("cpu-quick", "minutes on 2 CPU cores: EfficientNet-Lite1 at 240 px, features "
               "extracted once, 10 epochs of head, 3 of fine-tuning its last block on cached "
               "tensors (no augmented views)",
               (STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE), RECOMMENDED_BASE, 240,
               {STEP_EXTRACT: 10, STEP_FINETUNE: 3}, augment=False),
        Preset("classic", "the book's chapter: VGG16 at 150 px, every strategy with the "
               "book's epochs (scratch 30, scratch with augmentation 100, extraction 30, "
               "extraction with augmentation 30, fine-tuning block5 100)",
               (*BOOK_STEPS, STEP_EVALUATE), "vgg16", 150,
               {STEP_SCRATCH: 30, STEP_SCRATCH_AUGMENT: 100, STEP_EXTRACT: 30,
                STEP_EXTRACT_AUGMENT: 30, STEP_FINETUNE: 100}),
        # Measured, not fixed: extraction alone validated best on cats vs dogs (Lite1 99.5%,
        # the fine-tuned models 99.0-99.5%), the ensemble of two fine-tuned bases on Oxford 17
        # (97.1% and 97.4% over two seeds, extraction 94.5%; docs/results.md), so `best` tries
        # every one and keeps what validates best, whatever the dataset's size.
        Preset("best", "every recipe that won somewhere here, measured on your validation "
               "split: EfficientNet-Lite1 extraction, its whole base fine-tuned, Lite0 the "
               "same way, and the mean of the two fine-tuned models; the step that validates "
               "best is kept (within --budget, 15 minutes by default)",
               (STEP_EXTRACT, STEP_FINETUNE, STEP_EXTRACT_SECOND, STEP_FINETUNE_SECOND,
                STEP_ENSEMBLE, STEP_EVALUATE), RECOMMENDED_BASE, None, unfreeze="all",
               keep_best=True),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise PipelineError(f"`preset` {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def parse_steps(steps: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Known step names in run order, ``all`` expanded; a clear error for anything else."""
    chosen: set[str] = set()
    for step in steps:
        if step == ALL:
            chosen.update((*BOOK_STEPS, STEP_EVALUATE))
        elif step in STEPS:
            chosen.add(step)
        else:
            raise PipelineError(f"`steps`: {step!r} is not a step; choose from "
                                f"{', '.join(STEPS)} or {ALL}")
    if not chosen:
        raise PipelineError("`steps` is empty: name at least one step")
    for step in reversed(STEPS):  # what a step is made from comes with it (before it)
        if step in chosen:
            chosen.update(DEPENDS_ON.get(step, ()))
    return tuple(step for step in STEPS if step in chosen)


@dataclass(frozen=True)
class Choice:
    """What the rule of thumb chose for this dataset, and why (printed and recorded)."""

    steps: tuple[str, ...]
    unfreeze: str | None  # None: no fine-tuning
    reason: str
    keep_best: bool = False  # fine-tuning is tried: the step that validates better is kept


@dataclass(frozen=True)
class WholeBaseRecipe:
    """How ``run`` fine-tunes the whole base of a small dataset after extraction.

    Measured on Oxford 17 Flowers (split 0.6,0.2,0.2, EfficientNet-Lite1 at 240 px, two
    seeds; docs/results.md): validation 94.5% -> 95.6% and 95.2% -> 96.3% over extraction,
    with BatchNormalization frozen in inference mode, augmentation on the fly, Adam at 1e-4
    with a one-epoch warm-up and cosine decay, six epochs; the best epoch by validation loss.
    Label smoothing 0.1 then validated 96.7% and 96.0% against 94.9% and 96.0% without it
    (seeds 1337 and 2, from the same extraction head, mixed precision). Drop path 0.2
    (stochastic depth) then tied: the saved models validated 96.7% on both seeds, with and
    without it, so it stays off (``ChapterConfig.drop_path``).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    epochs: int = 6
    views: int = 0  # augmentation on the fly, through the whole model
    label_smoothing: float = 0.1


WHOLE_BASE = WholeBaseRecipe()
# `run`'s time budget when the user sets none: the whole-base epochs stop before it runs out.
DEFAULT_BUDGET_SECONDS = 15 * 60


def rule_of_thumb(train_images: int) -> Choice:
    """How much of the conv base to train for ``train_images`` training images."""
    if train_images < SMALL_DATASET:
        return Choice((STEP_EXTRACT, STEP_FINETUNE, STEP_EXTRACT_SECOND, STEP_FINETUNE_SECOND,
                       STEP_ENSEMBLE, STEP_EVALUATE), "all",
                      f"{train_images:,} training images < {SMALL_DATASET:,}: a small dataset; "
                      "the head trains on the frozen base's cached features, then the whole "
                      "base is fine-tuned under augmentation; while the time budget lasts, a "
                      "second base does the same and the two fine-tuned models are averaged; "
                      "the step that validates best is kept", keep_best=True)
    if train_images < MEDIUM_DATASET:
        return Choice((STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE), "top",
                      f"{SMALL_DATASET:,} <= {train_images:,} training images < "
                      f"{MEDIUM_DATASET:,}: a medium dataset; the head first, then the top "
                      "block of the conv base is unfrozen")
    return Choice((STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE), "all",
                  f"{train_images:,} training images >= {MEDIUM_DATASET:,}: a large dataset; "
                  "the head first, then the whole conv base trains")


def rule_of_thumb_help() -> str:
    return (f"without --preset, --steps or --unfreeze, the training images decide: fewer than "
            f"{SMALL_DATASET:,}: extract (base frozen, cached features), then fine-tune the "
            "whole base, then a second base the same way and the mean of the two, within "
            "--budget, keeping the step that validates best; fewer than "
            f"{MEDIUM_DATASET:,}: extract, then fine-tune the top block; more: extract, then "
            "fine-tune the whole base")
