"""Mixup and CutMix as training options: their default, their valid range, their help, and
the refusals where they cannot apply. Light (no TensorFlow), for the options and ``--help``;
the mixing itself is ``pipeline.training.mixing``.

Both mix pairs of training images and their labels, with the share ``lambda`` drawn from
Beta(alpha, alpha) per image: mixup (Zhang et al., 2018) blends the whole images, CutMix
(Yun et al., 2019) pastes a box of the partner image. They need what only a training that
batches whole images on the fly has: the images (not a frozen base's cached output) and
the labels (which a model's own layers never see), after augmentation.
"""

from __future__ import annotations

import math
from typing import Protocol

from pipeline.errors import PipelineError

NO_MIXING = 0.0  # alpha 0: no mixup, no CutMix
MIXING = ("mixup", "cutmix")  # the options' field names, in the order they are named

MIXUP_HELP = (
    "Mixup (Zhang et al. 2018): blend each training image with another of its batch, "
    "lambda * x_i + (1 - lambda) * x_j, and their labels the same way, lambda drawn per image "
    "from Beta(A, A), e.g. 0.2; 0: off.")
CUTMIX_HELP = (
    "CutMix (Yun et al. 2019): paste a box of another training image of the batch into each, "
    "the labels mixed by the share of pixels pasted, that share drawn per image from "
    "Beta(A, A), e.g. 1.0; 0: off. With --mixup too, each batch gets one of the two, at "
    "random.")
MIXING_WHERE = (
    "Only where the training batches images, after augmentation: train; extract with "
    "--augment --views 0 or --multi-size; finetune with --augment --views 0 or --no-cache-top.")


class _Mixing(Protocol):
    mixup: float
    cutmix: float


def check_mixing(name: str, value: float) -> None:
    """A mixing option is the alpha of a Beta distribution: finite, 0 (off) or more."""
    if not 0.0 <= value < math.inf:  # NaN fails both comparisons
        raise PipelineError(f"`{name}` must be a finite number, 0 (off) or more, e.g. 0.2, "
                            f"got {value}")


def mixing_given(options: _Mixing) -> list[str]:
    """The mixing options that are on (``mixup``, ``cutmix``), as their fields are named."""
    return [name for name in MIXING if getattr(options, name)]


def describe_mixing(options: _Mixing) -> str:
    """One line for the console: which mixing, with which alpha, where."""
    shown = ", ".join(f"{name} {getattr(options, name):g}" for name in mixing_given(options))
    return f"{shown}: training batches mixed in the tf.data pipeline, after augmentation"


def _refuse(given: list[str], fact: str, why: str, instead: str) -> None:
    names = " and ".join(f"`{name}`" for name in given)
    verb = "mix" if len(given) > 1 else "mixes"
    raise PipelineError(f"{names} {verb} {fact}, but {why}; {instead}, or set {names} to 0")


def refuse_mixing(options: _Mixing, why: str, instead: str) -> None:
    """Raise where mixing is on but the training never batches whole images: ``why`` says
    what it trains on instead, ``instead`` how to train on images.

    Refused rather than ignored: a run recorded with mixup that never mixed would be read
    as a measurement of mixup.
    """
    given = mixing_given(options)
    if given:
        _refuse(given, "whole training images and their labels", why, instead)


def check_mixing_placement(options: _Mixing, placement: str | None) -> None:
    """Mixing comes after augmentation, in the tf.data pipeline (the model never sees the
    labels), so augmentation must run there too: refuse ``placement`` model (None: the
    training does not augment)."""
    given = mixing_given(options)
    if given and placement == "model":
        _refuse(given, "training images and labels in the tf.data pipeline after augmentation",
                "`placement` model puts augmentation inside the model, after them",
                "give `placement` data or auto")
