"""Export a trained model for serving: a TensorFlow SavedModel, a TFLite file or an ONNX file.

Every format goes through Keras' own ``Model.export`` (``tf_saved_model``, ``litert``,
``onnx``), so what is served is the same forward pass Keras runs. Our models take raw RGB
images (0..255): preprocessing is a layer inside them, so the exported artefact takes raw
images too and a server needs no Python preprocessing code.

Before exporting, an inference copy of the model is made: the ``augmentation`` block is left
out (it does nothing at inference, but its random ops are not ONNX operators and would make
the ONNX file unloadable) and every layer computes in float32 (ONNX export requires it, and a
mixed-precision model served in float16 would answer slightly differently from its
evaluation). The copy holds the trained weights; the model passed in is not changed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
from pathlib import Path
from typing import Literal

import keras

from pipeline.errors import PipelineError
from pipeline.system.atomic import remove_path, replace_via_aside, write_json
from pipeline.system.npy_files import file_sha256
from pipeline.system.paths import check_writable_folder

ExportFormat = Literal["savedmodel", "tflite", "onnx"]
FORMATS: tuple[str, ...] = ("savedmodel", "tflite", "onnx")
# What an export is called inside a folder given as its place (the run's ``export/`` by default).
DEFAULT_NAMES = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}
MARKER = "export.json"  # inside a SavedModel folder: the files the export wrote

# Our format names -> Keras' names for them (Keras calls TFLite "litert").
_KERAS_FORMATS = {"savedmodel": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}
# The packages each format needs beyond TensorFlow, and where they come from.
_NEEDS = {"onnx": ("tf2onnx", "onnx")}
AUGMENTATION_NAME = "augmentation"  # the name every augmentation block gets (data/augment.py)


def export_model(
    model: keras.Model, output: Path, fmt: ExportFormat = "savedmodel", *, force: bool = False
) -> Path:
    """Write ``model`` for inference to ``output`` (a folder for ``savedmodel``, else a file).

    The result takes a batch of raw RGB images, float32 in 0..255, shape
    ``(batch, height, width, 3)``, and returns the model's predictions. ``output`` is
    written atomically: the export goes to a temporary name beside it and is moved into
    place when complete. An existing folder that is not an export is written into, under
    ``DEFAULT_NAMES[fmt]`` (``-o .`` puts ``./savedmodel`` there). An existing export is
    refused unless ``force`` is true, and ``force`` replaces only what an export wrote: a
    SavedModel folder holding exactly the files its ``export.json`` lists, or a file whose
    ``<file>.export.json`` holds its checksum. Returns the path written.
    """
    if fmt not in FORMATS:
        raise PipelineError(
            f"`fmt` {fmt!r} is not an export format; use one of {', '.join(FORMATS)}"
        )
    output = export_target(Path(output), fmt)
    check_writable_folder(output.parent, "output")
    _check_replaceable(output, fmt, force)
    _require_packages(fmt)
    inference = inference_copy(model)
    # Keras' TFLite writer insists on the suffix, whatever the final name is.
    suffix = ".tflite" if fmt == "tflite" else output.suffix
    tmp = output.parent / f".{output.stem[:80]}-{secrets.token_hex(4)}{suffix}"
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        inference.export(
            str(tmp), format=_KERAS_FORMATS[fmt], verbose=False,
            input_signature=_input_signature(inference),
        )
        if fmt == "savedmodel":
            write_json(tmp / MARKER, {"format": fmt, "files": _listing(tmp)})
        _replace(tmp, output)
        if fmt != "savedmodel":
            write_json(_sidecar(output), {"format": fmt, "sha256": file_sha256(output)})
    finally:
        remove_path(tmp)
    return output


def export_target(output: Path, fmt: str) -> Path:
    """``output``, or ``output/<default name>`` when it is a folder that is not an export."""
    if output.is_dir() and not (fmt == "savedmodel" and (output / MARKER).is_file()):
        return output / DEFAULT_NAMES[fmt]
    return output


def _check_replaceable(output: Path, fmt: str, force: bool) -> None:
    if not os.path.lexists(output):
        return
    if not force:
        raise PipelineError(f"{output}: already exists; choose another path or set `force`")
    problem = _not_an_export(output, fmt)
    if problem:
        raise PipelineError(f"{output}: {problem}, so `force` does not replace it (it replaces "
                            "only what an export wrote); nothing was changed; choose another "
                            "path")


def _not_an_export(output: Path, fmt: str) -> str | None:
    """Why ``output`` cannot be proven to be an earlier export of ``fmt``; None if it is."""
    if fmt == "savedmodel":
        try:
            listed = json.loads((output / MARKER).read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return f"holds no readable {MARKER}"
        found = _listing(output)
        found.pop(MARKER, None)
        return None if found == listed else "holds files its export did not write"
    if output.is_symlink() or not output.is_file():
        return "is not a file"
    try:
        recorded = json.loads(_sidecar(output).read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"has no readable {_sidecar(output).name} beside it"
    return None if recorded == file_sha256(output) else "was changed since it was exported"


def _listing(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size, by path relative to it."""
    return {str(path.relative_to(folder)): path.stat().st_size
            for path in sorted(folder.rglob("*")) if path.is_file() or path.is_symlink()}


def _sidecar(output: Path) -> Path:
    return output.with_name(f"{output.name}.export.json")


def inference_copy(model: keras.Model) -> keras.Model:
    """A float32 copy of ``model`` without its ``augmentation`` block, holding the same weights."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    def call(layer: keras.layers.Layer, *args, **kwargs):
        if layer.name == AUGMENTATION_NAME:
            return args[0]
        return layer(*args, **kwargs)

    try:
        copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    except ValueError as error:  # a subclassed model has no graph to copy
        raise PipelineError(
            f"model {model.name!r} cannot be exported: it is not a functional model ({error})"
        ) from error
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


def _input_signature(model: keras.Model) -> list[keras.InputSpec]:
    """Float32 images of the model's input shape, any batch size, under the input's name.

    Given explicitly because the copy has never been called, which Keras' ONNX export needs
    to infer it.
    """
    return [
        keras.InputSpec(shape=tensor.shape, dtype="float32", name=tensor.name)
        for tensor in model.inputs
    ]


def _require_packages(fmt: str) -> None:
    missing = [name for name in _NEEDS.get(fmt, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise PipelineError(
            f"exporting to {fmt} needs the Python package(s) {', '.join(missing)}; install them "
            f"with: pip install 'small-data-keras[onnx]'"
        )


def _replace(tmp: Path, output: Path) -> None:
    """Move the finished export onto ``output``, replacing what ``force`` allowed to replace."""
    if not os.path.lexists(output):
        os.replace(tmp, output)
        return
    old = output.parent / f".{output.name}-old-{secrets.token_hex(4)}"
    replace_via_aside(tmp, output, old)
    remove_path(old)
