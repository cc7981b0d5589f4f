"""Grad-CAM: which parts of an image made the model choose a class (Selvaraju et al., 2017).

The feature maps ``A_k`` of a convolution layer (the last one by default) are weighted by
the mean gradient of the class score with respect to each of them; the heatmap is
``relu(sum_k w_k A_k)``, scaled to 0..1.

The class score is the class's logit, before the output activation, as in the paper: with
a softmax output the logit of class ``c``; with our two-class sigmoid output (one unit,
``p`` = probability of class 1, logit ``z``) it is ``z`` for class 1 and ``-z`` for class 0
(``-z`` is the logit of ``1 - p``). Logits do not saturate the way probabilities do, so a
confident prediction still gets a heatmap. Models whose last layer is not a dense sigmoid or
softmax use the class probability instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import class_probabilities
from pipeline.visualize.model_layers import find_layer, last_conv_layer, single_input


@dataclass(frozen=True)
class GradCam:
    """A heatmap (h, w) in 0..1 over a layer's grid, for ``class_index``, with the prediction."""

    heatmap: np.ndarray
    class_index: int
    probabilities: np.ndarray  # (C,) probability of every class
    layer_name: str


def gradcam(
    model: keras.Model,
    image: np.ndarray,
    class_index: int | None = None,
    layer_name: str | None = None,
) -> GradCam:
    """Grad-CAM of one raw image (S, S, 3) in 0..255; ``class_index`` None: the predicted class."""
    layer = find_layer(model, layer_name) if layer_name else last_conv_layer(model)
    if len(layer.output.shape) != 4:
        raise PipelineError(f"`layer_name` {layer.name!r} has no feature maps (output "
                            f"{tuple(layer.output.shape)}); choose a convolution layer")
    head = _dense_head(model)
    last_tensor = head.input if head is not None else model.outputs[0]
    grad_model = keras.Model(single_input(model), [layer.output, last_tensor])
    batch = tf.constant(image[None], tf.float32)
    with tf.GradientTape() as tape:
        computed, last = grad_model(batch, training=False)  # bfloat16 or float16 when mixed
        probabilities, scores = _probabilities_and_scores(head, tf.cast(last, tf.float32))
        chosen = int(np.argmax(probabilities[0])) if class_index is None else class_index
        if not 0 <= chosen < probabilities.shape[1]:
            raise PipelineError(f"class index {chosen} out of range")
        score = scores[:, chosen]
    # Taken at the maps as computed: a cast made after them is not on the path to the score.
    gradients = tf.cast(tape.gradient(score, computed), tf.float32)
    maps = tf.cast(computed, tf.float32)
    weights = tf.reduce_mean(gradients, axis=[1, 2])  # one weight per feature map
    cam = tf.nn.relu(tf.reduce_sum(maps * weights[:, None, None, :], axis=-1))[0].numpy()
    peak = float(cam.max())
    heatmap = cam / peak if peak > 0 else np.zeros_like(cam)
    return GradCam(heatmap.astype(np.float32), chosen, np.asarray(probabilities[0]), layer.name)


def _dense_head(model: keras.Model):
    """The final Dense layer when its activation is sigmoid or softmax (so logits are reachable)."""
    last = model.outputs[0]._keras_history.operation
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if isinstance(last, keras.layers.Dense) and activation in ("sigmoid", "softmax"):
        return last
    return None


def _probabilities_and_scores(head, last: tf.Tensor):
    """(probabilities (1, C), class scores (1, C)) from the head's input or the model output."""
    if head is None:
        probabilities = _two_columns(last)
        return probabilities.numpy(), probabilities
    logits = tf.matmul(last, tf.cast(head.kernel, tf.float32))
    if head.use_bias:
        logits = logits + tf.cast(head.bias, tf.float32)
    if logits.shape[-1] == 1:
        scores = tf.concat([-logits, logits], axis=-1)
        return class_probabilities(tf.sigmoid(logits).numpy()), scores
    return tf.nn.softmax(logits).numpy(), logits


def _two_columns(outputs: tf.Tensor) -> tf.Tensor:
    if outputs.shape[-1] == 1:
        return tf.concat([1.0 - outputs, outputs], axis=-1)
    return outputs
