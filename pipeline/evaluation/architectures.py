"""Find a model to inspect: a run folder, a ``.keras`` file, or an architecture by name.

Names are the ``keras.applications`` models (``vgg16``, ``resnet50``, ``mobilenet_v2``,
``xception``, ``efficientnet_b0`` ...; case, ``-`` and ``_`` do not matter) plus this
project's from-scratch convnets, ``scratch`` (or ``convnet``) and ``mini_xception``. They are
built with random weights (``weights=None``): nothing is downloaded, and shapes and counts do
not depend on the weights.
"""

from __future__ import annotations

from pathlib import Path

import keras

from pipeline.errors import PipelineError
from pipeline.evaluation.saved_model import load_run_model
from pipeline.models.saving import load_model

# Input sizes the architectures were designed for; the rest default to 224.
_NATIVE_SIZES = {
    "xception": 299, "inceptionv3": 299, "inceptionresnetv2": 299, "nasnetlarge": 331,
    "efficientnetb1": 240, "efficientnetb2": 260, "efficientnetb3": 300, "efficientnetb4": 380,
    "efficientnetb5": 456, "efficientnetb6": 528, "efficientnetb7": 600,
    "efficientnetv2s": 384, "efficientnetv2m": 480, "efficientnetv2l": 480, "scratch": 150,
    "convnet": 150, "minixception": 180,
}
_SCRATCH = {"scratch": "convnet", "convnet": "convnet", "minixception": "mini_xception"}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def application_names() -> dict[str, str]:
    """Normalised name -> ``keras.applications`` constructor name (``mobilenetv2``: MobileNetV2)."""
    return {
        _key(attr): attr
        for attr in dir(keras.applications)
        if attr[:1].isupper() and callable(getattr(keras.applications, attr))
    }


def native_image_size(name: str) -> int:
    return _NATIVE_SIZES.get(_key(name), 224)


def build_named_model(name: str, image_size: int | None = None, include_top: bool = False):
    """Build an architecture by name with random weights at ``image_size`` (default: native)."""
    size = image_size or native_image_size(name)
    if _key(name) in _SCRATCH:
        from pipeline.models.scratch import build_scratch_convnet

        return build_scratch_convnet(size, 2, architecture_name=_SCRATCH[_key(name)])
    constructors = application_names()
    if _key(name) not in constructors:
        raise PipelineError(
            f"{name!r} is not a run folder, a .keras file or a model name (vgg16, resnet50, "
            "mobilenet_v2, xception, efficientnet_b0, scratch, mini_xception, or any "
            "keras.applications model)"
        )
    constructor = getattr(keras.applications, constructors[_key(name)])
    try:
        return constructor(weights=None, include_top=include_top, input_shape=(size, size, 3))
    except ValueError as error:
        reason = str(error).strip().splitlines()[0]
        raise PipelineError(f"{name} at `image_size` {size}: {reason}") from error


def model_to_inspect(spec: str | Path, image_size: int | None = None, include_top: bool = False):
    """The model named by ``spec``: a run folder (its best model), a ``.keras`` file or a name."""
    path = Path(spec)
    if path.is_dir():
        return load_run_model(path).model
    if path.suffix == ".keras" or path.is_file():
        return load_model(path)
    return build_named_model(str(spec), image_size, include_top)
