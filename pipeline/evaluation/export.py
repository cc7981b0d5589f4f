"""Export a trained model for serving: a TensorFlow SavedModel, a TFLite file or an ONNX file.

The SavedModel and the TFLite model take raw photos: ``uint8`` RGB pixels of any height and
width (the SavedModel also float32 0..255), resized inside the graph exactly as in training,
and return every class's probability with the class names (``pipeline.evaluation.serving``);
fed the pixels ``read_rgb_image`` decodes, they answer what ``predict`` answers. The class
names are also written beside the model, one per line in class-index order: ``labels.txt``
inside the SavedModel folder, ``<file>.labels.txt`` beside a TFLite or ONNX file. The ONNX
file is Keras' own ``Model.export(format="onnx")``: float32 images already at the model's
side (resized by the caller as ``load_image_array`` does), the model's raw output.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import keras

from pipeline.errors import PipelineError
from pipeline.evaluation.saved_model import RunModel
from pipeline.evaluation.serving import check_serving_facts, write_savedmodel, write_tflite
from pipeline.system.atomic import remove_path, replace_via_aside, write_json, write_text
from pipeline.system.npy_files import file_sha256
from pipeline.system.paths import check_writable_folder

ExportFormat = Literal["savedmodel", "tflite", "onnx"]
FORMATS: tuple[str, ...] = ("savedmodel", "tflite", "onnx")
# What an export is called inside a folder given as its place (the run's ``export/`` by default).
DEFAULT_NAMES = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}
MARKER = "export.json"  # inside a SavedModel folder: the files the export wrote
LABELS = "labels.txt"  # inside a SavedModel folder; beside a file: ``<file>.labels.txt``

# The packages each format needs beyond TensorFlow, and where they come from.
_NEEDS = {"onnx": ("tf2onnx", "onnx")}
AUGMENTATION_NAME = "augmentation"  # the name every augmentation block gets (data/augment.py)


def export_model(
    model: keras.Model | RunModel,
    output: Path,
    fmt: ExportFormat = "savedmodel",
    *,
    class_names: Sequence[str] | None = None,
    image_size: int | None = None,
    force: bool = False,
) -> Path:
    """Write ``model`` for inference to ``output`` (a folder for ``savedmodel``, else a file).

    ``model`` is a run's model from ``load_run_model`` (which knows its class names and image
    size) or a Keras model with ``class_names`` in index order and ``image_size`` (default:
    the side of its input, when fixed). ``output`` is written atomically: the export goes to
    a temporary name beside it and is moved into place when complete. An existing folder that
    is not an export is written into, under ``DEFAULT_NAMES[fmt]`` (``-o .`` puts
    ``./savedmodel`` there). An existing export is refused unless ``force`` is true, and
    ``force`` replaces only what an export wrote: a SavedModel folder holding exactly the
    files its ``export.json`` lists, or a file (and its labels) whose ``<file>.export.json``
    holds their checksums. Returns the path written.
    """
    if fmt not in FORMATS:
        raise PipelineError(
            f"`fmt` {fmt!r} is not an export format; use one of {', '.join(FORMATS)}"
        )
    model, class_names, image_size = _serving_facts(model, class_names, image_size)
    check_serving_facts(model, class_names, image_size)
    output = export_target(Path(output), fmt)
    check_writable_folder(output.parent, "output")
    _check_replaceable(output, fmt, force)
    _require_packages(fmt)
    inference = inference_copy(model)
    labels = "".join(f"{name}\n" for name in class_names)
    tmp = output.parent / f".{output.stem[:80]}-{secrets.token_hex(4)}{output.suffix}"
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        if fmt == "savedmodel":
            write_savedmodel(inference, class_names, image_size, tmp)
            write_text(tmp / LABELS, labels)
            write_json(tmp / MARKER, {"format": fmt, "files": _listing(tmp)})
        elif fmt == "tflite":
            write_tflite(inference, class_names, image_size, tmp)
        else:
            inference.export(str(tmp), format="onnx", verbose=False,
                             input_signature=_input_signature(inference))
        _replace(tmp, output)
        if fmt != "savedmodel":
            names = labels_file(output, fmt)
            write_text(names, labels)
            write_json(_sidecar(output), {
                "format": fmt, "sha256": file_sha256(output),
                "labels": {"name": names.name, "sha256": file_sha256(names)},
            })
    finally:
        remove_path(tmp)
    return output


def describe_input(fmt: str, image_size: int) -> str:
    """What the export of ``fmt`` takes and answers, in words, for the command's output."""
    if fmt == "onnx":
        return (f"input: float32 images (batch, {image_size}, {image_size}, 3) in 0..255, "
                "resized as in training by the caller; output: the model's own")
    also = " (or float32 0..255: signature serve_float32)" if fmt == "savedmodel" else ""
    return (f"input: uint8 RGB photos (batch, height, width, 3) of any size{also}, resized "
            f"inside to {image_size} x {image_size}; outputs: probabilities and classes")


def labels_file(output: Path, fmt: str) -> Path:
    """Where the class names of the ``fmt`` export at ``output`` are written."""
    output = Path(output)
    return output / LABELS if fmt == "savedmodel" else output.with_name(f"{output.name}.{LABELS}")


def _serving_facts(
    model: keras.Model | RunModel, class_names: Sequence[str] | None, image_size: int | None,
) -> tuple[keras.Model, tuple[str, ...], int]:
    """The Keras model, its class names and its image size, from a run or as given."""
    if isinstance(model, RunModel):
        return (model.model, tuple(class_names or model.class_names),
                image_size or model.image_size)
    if class_names is None:
        raise PipelineError("`class_names`: give the model's class names in class-index order "
                            "(a model from load_run_model knows them)")
    if image_size is None:
        side = tuple(model.inputs[0].shape[1:3])
        if len(side) != 2 or side[0] != side[1] or not isinstance(side[0], int):
            raise PipelineError(f"`image_size`: the model takes images of {side}; give the "
                                "side it was trained at")
        image_size = side[0]
    return model, tuple(class_names), image_size


def export_target(output: Path, fmt: str) -> Path:
    """``output``, or ``output/<default name>`` when it is a folder that is not an export."""
    if output.is_dir() and not (fmt == "savedmodel" and (output / MARKER).is_file()):
        return output / DEFAULT_NAMES[fmt]
    return output


def _check_replaceable(output: Path, fmt: str, force: bool) -> None:
    names = labels_file(output, fmt)
    if fmt != "savedmodel" and os.path.lexists(names) and not os.path.lexists(output):
        raise PipelineError(f"{names}: already exists and no export beside it wrote it; "
                            "nothing was changed; choose another path")
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
        record = json.loads(_sidecar(output).read_text(encoding="utf-8"))
        recorded, labels = record["sha256"], record.get("labels") or {}
        labels_sha = labels.get("sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"has no readable {_sidecar(output).name} beside it"
    if recorded != file_sha256(output):
        return "was changed since it was exported"
    names = labels_file(output, fmt)
    if os.path.lexists(names) and (names.is_symlink() or not names.is_file()
                                   or labels_sha != file_sha256(names)):
        return f"has a {names.name} beside it that its export did not write"
    return None


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
