"""Filter patterns: the input image each filter of a convolution layer responds to most.

Gradient ascent in input space (Chollet, 5.4.2): start from a grey image with a little
noise and repeatedly move it along the gradient of the filter's mean response. The
model's own raw-image input (0..255) is used, so its preprocessing is part of what is
optimised; steps are normalised (gradient divided by its root mean square) so the same
step size suits every layer, and the image is kept within 0..255. All filters are
optimised together, one image each, in a single batch.

The response is taken before the layer's activation: a filter whose ReLU is silent on the
grey start would otherwise have no gradient at all and its pattern would stay grey noise.
Where the filter fires, raising the response before the ReLU raises it after.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipeline.errors import PipelineError
from pipeline.evaluation.saved_model import load_run_model
from pipeline.system.paths import output_file
from pipeline.visualize.model_layers import find_conv_layer, single_input
from pipeline.visualize.mosaic import save_mosaic, tile

STEP_SIZE = 4.0  # grey levels per step, per pixel on average
BORDER = 2  # activations this close to the edge are ignored: they see mostly padding


def filter_patterns(
    model,
    layer_name: str,
    *,
    count: int = 16,
    steps: int = 30,
    image_size: int,
    step_size: float = STEP_SIZE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Patterns (count, S, S, 3) uint8 for the first ``count`` filters, and their final scores.

    The score of a pattern is the mean activation of its filter, which ascent increases.
    """
    if count < 1 or steps < 1:
        raise PipelineError(f"`count` {count} and `steps` {steps}: both must be at least 1")
    layer = find_conv_layer(model, layer_name)
    filters = int(layer.output.shape[-1])
    count = min(count, filters)
    feed = layer_input_model(model, layer)
    response = without_activation(layer)
    chosen = tf.range(count)

    def scores(images: tf.Tensor) -> tf.Tensor:
        maps = tf.cast(response(feed(images, training=False)), tf.float32)
        if maps.shape[1] > 2 * BORDER and maps.shape[2] > 2 * BORDER:
            maps = maps[:, BORDER:-BORDER, BORDER:-BORDER, :]
        own = tf.gather(maps, chosen, axis=3, batch_dims=1)  # image i keeps filter i
        return tf.reduce_mean(own, axis=[1, 2])

    @tf.function
    def ascend(images: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(images)
            total = tf.reduce_sum(scores(images))
        gradients = tape.gradient(total, images)
        rms = tf.sqrt(tf.reduce_mean(tf.square(gradients), axis=[1, 2, 3], keepdims=True))
        return tf.clip_by_value(images + step_size * gradients / (rms + 1e-8), 0.0, 255.0)

    rng = np.random.default_rng(seed)
    images = tf.constant(rng.uniform(96, 160, (count, image_size, image_size, 3)), tf.float32)
    for _ in range(steps):
        images = ascend(images)
    final_scores = scores(images).numpy()
    return np.stack([deprocess(image) for image in images.numpy()]), final_scores


def layer_input_model(model: keras.Model, layer: keras.Layer):
    """A function from the model's raw images to what ``layer`` receives."""
    source = single_input(model)
    if layer.input is source:
        return lambda images, training=False: images
    return keras.Model(source, layer.input)


def without_activation(layer: keras.Layer) -> keras.Layer:
    """A copy of a convolution layer with the same weights and a linear activation."""
    config = layer.get_config()
    config["activation"] = "linear"
    twin = type(layer).from_config(config)
    twin.build(layer.input.shape)
    twin.set_weights(layer.get_weights())
    return twin


def deprocess(image: np.ndarray) -> np.ndarray:
    """Stretch a pattern's contrast for display: zero mean, 64 levels per std, around 128."""
    std = float(image.std())
    if std < 1e-8:
        return np.full(image.shape, 128, dtype=np.uint8)
    return np.clip((image - image.mean()) / std * 64.0 + 128.0, 0, 255).astype(np.uint8)


def write_filter_patterns(
    run_path: str | Path,
    layer_name: str,
    *,
    count: int = 16,
    steps: int = 30,
    out: str | Path | None = None,
    which: str = "best",
) -> Path:
    """Write a grid of ``count`` filter patterns of ``layer_name`` (default
    ``<run>/visualize/filters-<layer>.png``)."""
    if out is not None:
        output_file(out, f"filters-{layer_name}.png", ".")  # refused before any work
    loaded = load_run_model(run_path, which)
    patterns, _ = filter_patterns(
        loaded.model, layer_name, count=count, steps=steps, image_size=loaded.image_size
    )
    layer = loaded.model.get_layer(layer_name)
    total = int(layer.output.shape[-1])
    columns = math.ceil(math.sqrt(len(patterns)))
    title = (f"{loaded.run.name} {layer_name}: patterns maximising filters 0-{len(patterns) - 1} "
             f"of {total} ({steps} steps)")
    path = output_file(out, f"filters-{layer_name}.png", loaded.run.file("visualize"))
    return save_mosaic(tile(patterns, columns, gap=2), path, title)
