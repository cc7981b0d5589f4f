"""What to augment (``AugmentConfig``) and how many augmented views to cache, defined once.

Light on purpose (no TensorFlow): the workflow configs and the command line read these
defaults; ``pipeline.data.augment`` builds the Keras layers from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError

# Cached augmented views per training image (``extract`` with ``augment``, ``finetune``):
# enough draws that a short training rarely shows an image through the same view twice.
# 0 augments on the fly instead: every epoch a fresh draw through the whole model.
DEFAULT_VIEWS = 8

FILL_MODES = ("nearest", "reflect", "wrap", "constant")
PLACEMENTS = ("auto", "model", "data")


@dataclass
class AugmentConfig:
    """The classic set of Chollet's book, each part adjustable (0 or False turns it off).

    ``shear`` follows Keras 3's ``RandomShear`` (a shear factor, not degrees);
    ``fill_mode`` ``nearest`` is what ``ImageDataGenerator`` did.
    ``pca_color`` is the standard deviation of AlexNet's colour shift (0.1 in the paper).
    """

    rotation: float = 40.0  # degrees, both ways
    width_shift: float = 0.2  # fraction of the width
    height_shift: float = 0.2  # fraction of the height
    shear: float = 0.2
    zoom: float = 0.2  # zoom in or out by up to this fraction
    horizontal_flip: bool = True
    pca_color: float = 0.0
    fill_mode: str = "nearest"
    # Where the layers run while training from images: "model" (the model's first layers: on a
    # GPU, on the accelerator), "data" (mapped over tf.data: CPU threads augment the next
    # batch while the step runs) or "auto": data on a CPU, where bench/bench_augment_placement.py
    # measured it 1.4x faster here (91 vs 65 images/s), model on a GPU.
    placement: str = "auto"

    def validate(self) -> None:
        """Refuse settings no augmentation layer can take, naming the field."""
        if self.placement not in PLACEMENTS:
            raise PipelineError(f"`placement` {self.placement!r}: choose one of "
                                f"{', '.join(PLACEMENTS)}")
        for name in ("rotation", "width_shift", "height_shift", "shear", "zoom", "pca_color"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not 0 <= value < float("inf")):  # NaN fails every comparison
                raise PipelineError(f"`{name}` {value!r}: must be a finite number, 0 or more")
        if self.rotation > 180:
            raise PipelineError(f"`rotation` {self.rotation}: is in degrees, at most 180")
        # Keras' layers take these as fractions of the image; above 1 a shift moves the whole
        # image out of view and a zoom of more than 100 % has no meaning (Keras raises deep
        # inside the model build).
        for name in ("width_shift", "height_shift", "zoom"):
            if getattr(self, name) > 1:
                raise PipelineError(
                    f"`{name}` {getattr(self, name)}: is a fraction of the image, at most 1 "
                    "(0.2 is 20 %)"
                )
        if self.fill_mode not in FILL_MODES:
            raise PipelineError(
                f"`fill_mode` {self.fill_mode!r}: choose {', '.join(FILL_MODES[:-1])} or "
                f"{FILL_MODES[-1]}"
            )
