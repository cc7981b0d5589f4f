"""Several trained classifiers as one model: the mean of their predicted probabilities.

Averaging the outputs of networks that make different mistakes (different bases, different
seeds) is the plainest ensemble, and on a few hundred photos a reliable one: each model's
errors are partly its own. The result is one Keras model taking raw RGB images at one size,
like every model here, so evaluation, prediction and export need nothing new: a member
trained at another size gets a ``Resizing`` layer in front of it (bilinear, as the data
pipeline resizes photos).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from pipeline.errors import PipelineError

MIN_MEMBERS = 2


def input_size(model: keras.Model) -> int:
    """The square image size a classifier of this package takes (height = width)."""
    shape = model.input_shape
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2]:
        raise PipelineError(f"model {model.name!r} takes {shape}, not square images of one "
                            "size; only the classifiers trained here can be averaged")
    return int(shape[1])


def average_of(members: Sequence[keras.Model], image_size: int,
               names: Sequence[str] | None = None) -> keras.Model:
    """One model whose output is the mean of ``members``' outputs, fed ``image_size`` px RGB.

    Every member must give the same output (one sigmoid unit, or a softmax over the same
    classes in the same order: the caller checks the class names). ``names`` become the
    members' layer names in the new model (default ``member_<i>``), unique as Keras needs.
    """
    if len(members) < MIN_MEMBERS:
        raise PipelineError(f"an ensemble needs at least {MIN_MEMBERS} models, got {len(members)}")
    outputs = {tuple(member.output_shape) for member in members}
    if len(outputs) != 1:
        raise PipelineError(f"the models' outputs differ ({sorted(map(str, outputs))}); "
                            "average only models of the same classes")
    names = list(names) if names is not None else [f"member_{i}" for i in range(len(members))]
    images = keras.Input((image_size, image_size, 3), name="images")
    predictions = []
    for member, name in zip(members, names, strict=True):
        size = input_size(member)
        member.name = name
        fed = images if size == image_size else keras.layers.Resizing(
            size, size, interpolation="bilinear", name=f"{name}_resize")(images)
        predictions.append(member(fed))
    mean = keras.layers.Average(dtype="float32", name="predictions")(predictions)
    return keras.Model(images, mean, name="ensemble")
