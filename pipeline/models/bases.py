"""The pretrained conv bases on offer, and what each needs: preprocessing, size, top block.

Each entry names a ``keras.applications`` constructor (always built with
``include_top=False``), the preprocessing its ImageNet weights expect, the smallest
input it accepts, and its "top block": the first layer, in the model's layer order, of
the last block or stage, which fine-tuning unfreezes. The input of that layer is the
split point whose output can be cached (for VGG16, ``block4_pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class ConvBase:
    """One conv base: how to build it and where its blocks are."""

    name: str  # what the CLI calls it
    constructor: str  # attribute of keras.applications
    preprocessing: str  # mode of ImagePreprocessing its ImageNet weights expect
    min_image_size: int  # keras.applications refuses smaller inputs
    top_block: str  # first layer of the last block/stage; all base layers after it belong to it
    imagenet_file: str  # Keras' cache name of the no-top ImageNet weights ({rows}: input size)

    def build(self, inputs: keras.KerasTensor, weights: str | None) -> keras.Model:
        """The base on ``inputs`` (flat: its layers join the caller's graph), no classifier.

        ``weights`` is what ``keras.applications`` takes: ``"imagenet"``, a path, or None.
        """
        if inputs.shape[1] is not None:  # None: any size, checked by the caller
            self.check_image_size(int(inputs.shape[1]))
        factory = getattr(keras.applications, self.constructor)
        return factory(include_top=False, weights=weights, input_tensor=inputs)

    def check_image_size(self, image_size: int) -> None:
        if image_size < self.min_image_size:
            raise PipelineError(
                f"--image-size {image_size} is too small for --base {self.name}; use at least "
                f"{self.min_image_size} (150 is the classic choice)"
            )

    def imagenet_filename(self, image_size: int) -> str:
        """File name under ``~/.keras/models`` of the weights ``weights="imagenet"`` loads."""
        # MobileNetV2 has weights for five input sizes and falls back to the 224 ones.
        rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
        return self.imagenet_file.format(rows=rows)


BASES: dict[str, ConvBase] = {
    base.name: base
    for base in (
        ConvBase("vgg16", "VGG16", "caffe", 32, "block5_conv1",
                 "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ConvBase("resnet50", "ResNet50", "caffe", 32, "conv5_block1_1_conv",
                 "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ConvBase("mobilenet_v2", "MobileNetV2", "tf", 32, "block_16_expand",
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"),
        ConvBase("xception", "Xception", "tf", 71, "block14_sepconv1",
                 "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ConvBase("efficientnet_b0", "EfficientNetB0", "none", 32, "block7a_expand_conv",
                 "efficientnetb0_notop.h5"),
    )
}
DEFAULT_BASE = "vgg16"


def get_base(name: str) -> ConvBase:
    """The registered base called ``name``, or a one-line error listing the choices."""
    try:
        return BASES[name]
    except KeyError:
        raise PipelineError(
            f"--base {name!r} is not a conv base here; choose one of {', '.join(BASES)}"
        ) from None
