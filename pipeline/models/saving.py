"""Save and load ``.keras`` models: atomic writes, and one safe loader used everywhere.

Models load with Keras' safe mode on: a ``.keras`` file can never run Python code it
carries (a ``Lambda`` layer, say); such a file is refused with a message saying so. The
layers of this package are registered by importing their modules below, explicitly, so a
saved model holding one of them always finds it (an import failure is a real error).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

# Imported for their registration with Keras' serialization (@register_keras_serializable).
import pipeline.data.augment
import pipeline.data.pca_color
import pipeline.layers.locally_connected
import pipeline.layers.netvlad
import pipeline.layers.spatial_pyramid_pooling
import pipeline.layers.stochastic_depth_add
import pipeline.layers.training_resize
import pipeline.models.dominant_class_accuracy
import pipeline.models.layer_decay
import pipeline.models.preprocessing
import pipeline.models.smoothed_crossentropy
import pipeline.models.soft_target_crossentropy  # noqa: F401
from pipeline.errors import PipelineError
from pipeline.system import atomic


def save_model(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` model atomically: a crash leaves the previous file intact."""
    with atomic.atomic_path(path) as tmp:
        model.save(tmp)


def load_model(path: str | Path, *, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file with safe mode on; uncompiled unless ``compile``.

    Errors say which thing is wrong: no such file, not readable (permissions), empty or
    damaged (not a ``.keras`` archive, e.g. a copy cut short), or refused by safe mode.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: no such model file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise PipelineError(f"{path}: permission denied, this user cannot read it; ask its owner "
                            "or change its permissions (chmod u+r)") from None
    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: the file is empty (0 bytes): damaged, a save or copy was "
                            "cut short")
    if not _is_keras_archive(path):
        raise PipelineError(f"{path}: damaged or not a Keras model file (not a .keras archive "
                            "saved by Keras 3; a save or copy cut short?)")
    _refuse_oversized_members(path)
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except ValueError as error:
        if "safe_mode" in str(error) or "arbitrary code" in str(error):
            raise PipelineError(
                f"{path}: refused by Keras safe mode, the model holds Python code (e.g. a Lambda "
                "layer); rebuild the model without such layers"
            ) from error
        raise PipelineError(f"{path}: cannot load the model ({_first_line(error)})") from error
    except (OSError, TypeError, KeyError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path}: cannot load the model ({_first_line(error)})") from error


def _is_keras_archive(path: Path) -> bool:
    """A ``.keras`` file is a zip holding ``config.json`` and ``metadata.json``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "config.json" in archive.namelist()


# What a member of a ``.keras`` archive may unpack to before it is read. A model's JSON is
# kilobytes; its weights barely compress (floats), so a member that unpacks to far more than
# it takes in the archive is a zip bomb, not a model.
MAX_JSON_BYTES = 64 << 20
MAX_UNPACKED_BYTES = 256 << 20  # beyond this, the compression ratio below must also hold
MAX_RATIO = 100


def _refuse_oversized_members(path: Path) -> None:
    """Refuse, before anything is decompressed, members that would unpack beyond the bounds.

    The sizes checked are those the archive declares; Python's ``zipfile`` reads no more than
    a member's declared size, so they bound what loading can unpack.
    """
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            ratio = member.file_size / max(1, member.compress_size)
            too_big = (member.filename.endswith(".json") and member.file_size > MAX_JSON_BYTES) \
                or (member.file_size > MAX_UNPACKED_BYTES and ratio > MAX_RATIO)
            if too_big:
                raise PipelineError(
                    f"{path}: refused, its member {member.filename} would unpack to "
                    f"{member.file_size / 2**20:.0f} MiB from {member.compress_size / 2**20:.1f} "
                    "MiB (not a model Keras saved; damaged or made to exhaust memory)")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
