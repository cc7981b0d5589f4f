"""A conv base's input preprocessing as a layer, so a saved model takes raw images (0..255)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

MODES = ("caffe", "torch", "tf", "lite", "none")

# keras.applications.imagenet_utils' constants, so the layer matches preprocess_input exactly.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="pipeline")
class ImagePreprocessing(keras.layers.Layer):
    """Maps raw RGB images in 0..255 to the input a conv base's weights were trained on.

    The same arithmetic as ``keras.applications.imagenet_utils.preprocess_input(x, mode)``:

        caffe:  RGB -> BGR, then minus the ImageNet mean per channel (VGG16, ResNet50)
        torch:  x / 255, minus mean (0.485, 0.456, 0.406), divided by std (0.229, 0.224, 0.225)
        tf:     x / 127.5 - 1 (MobileNetV2, Xception)
        lite:   (x - 127) / 128 (EfficientNet-Lite, as its TF training did)
        none:   unchanged (EfficientNet rescales inside its own graph)

    Args:
        mode: one of ``caffe``, ``torch``, ``tf``, ``lite``, ``none``; default ``caffe``.

    Input shape: ``(batch, height, width, 3)``, channels last.
    Output shape: the same.

    Example:
        >>> layer = ImagePreprocessing("tf")
        >>> layer(np.full((1, 2, 2, 3), 255.0)).numpy().max()
        1.0
    """

    def __init__(self, mode: str = "caffe", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {', '.join(MODES)}, got mode={mode!r}.")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, self.compute_dtype)
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN_RGB, self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD_RGB, self.compute_dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "lite":
            return (x - 127.0) / 128.0
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
