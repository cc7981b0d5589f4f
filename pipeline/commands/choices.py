"""The names the command line offers for the registries, without importing TensorFlow.

The registries (``BASES``, ``HEADS``, ``MODES``, ``ARCHITECTURES``) live in modules that
import Keras, which takes seconds; ``--help`` must answer at once, so their names are listed
here and ``tests/test_cli.py`` holds them equal to the registries (a new base added there and
not here fails that test).
"""

from __future__ import annotations

import click

BASE_NAMES = ("vgg16", "resnet50", "mobilenet_v2", "xception", "efficientnet_b0",
              "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")  # models.bases
HEAD_NAMES = ("flatten", "gap", "spp", "netvlad", "local")  # models.heads
PREPROCESSING_MODES = ("caffe", "torch", "tf", "lite", "none")  # models.preprocessing
ARCHITECTURE_NAMES = ("convnet", "mini_xception")  # models.scratch
REGISTRIES = {  # the names above -> the registry they mirror, for the test
    "pipeline.models.bases:BASES": BASE_NAMES,
    "pipeline.models.heads:HEADS": HEAD_NAMES,
    "pipeline.models.preprocessing:MODES": PREPROCESSING_MODES,
    "pipeline.models.scratch:ARCHITECTURES": ARCHITECTURE_NAMES,
}


class Names(click.Choice):
    """A choice among many names, shown as ``NAME`` beside the option and listed in its help
    (the full ``[a|b|c|...]`` would push every help text onto its own line)."""

    def __init__(self, names: tuple[str, ...], metavar: str = "NAME") -> None:
        super().__init__(names)
        self.metavar = metavar

    def get_metavar(self, param, ctx) -> str:
        return self.metavar
