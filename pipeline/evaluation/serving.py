"""The served model's graph: raw photos of any size in, each class's probability and name out.

A client should send the pixels it decoded and nothing else, so the graph wraps the Keras
model with what ``predict`` does around it: the resize to the model's side, with the op and
pixel type training used (``tf.image.resize``, bilinear, on the uint8 pixels as float32: see
``pipeline.data.dataset.decode_images`` and ``pipeline.data.image_file.load_image_array``),
and a sigmoid's single column turned into two probabilities (``metrics.class_probabilities``).
Fed the pixels ``read_rgb_image`` gives, it answers what ``predict`` answers, to float32
rounding. The class names are a constant of the graph, returned beside the probabilities
(TensorFlow's classification convention: ``classes`` and scores, both ``(batch, classes)``,
which keeps every output batch-major as TF Serving's row format requires).

Endpoints (SavedModel signatures):

    serve / serving_default   images: uint8 (batch, height, width, 3), any height and width
    serve_float32             images: float32 0..255, same shape (e.g. pixels already floats)

both returning ``{"probabilities": float32 (batch, C), "classes": string (batch, C)}``.
TFLite gets the ``serve`` signature alone (one input type per signature runner).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras

from pipeline.errors import PipelineError

SERVE, SERVE_FLOAT = "serve", "serve_float32"
INPUT = "images"
PROBABILITIES, CLASSES = "probabilities", "classes"


def check_serving_facts(model: keras.Model, class_names: Sequence[str], image_size: int) -> None:
    """Refuse names or a size that cannot describe ``model``, before any export work."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise PipelineError(f"`image_size` {image_size!r}: give the side the model was "
                            "trained at, in pixels")
    if len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise PipelineError("`class_names` must list two or more different names, one per "
                            "class in index order")
    units = model.outputs[0].shape[-1]
    if units != len(class_names) and not (units == 1 and len(class_names) == 2):
        raise PipelineError(f"`class_names` lists {len(class_names)} classes, but the model "
                            f"outputs {units} value(s) per image")


def serving_archive(model: keras.Model, class_names: Sequence[str], image_size: int, *,
                    float_input: bool = True):
    """A ``keras.export.ExportArchive`` of ``model`` with the raw-image endpoints above."""
    import tensorflow as tf
    from keras.export import ExportArchive

    names = tf.constant(list(class_names), dtype=tf.string)
    sigmoid = model.outputs[0].shape[-1] == 1

    def answer(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        resized = tf.image.resize(pixels, (image_size, image_size), method="bilinear")
        outputs = tf.cast(model(resized, training=False), tf.float32)
        if sigmoid:
            outputs = tf.concat([1.0 - outputs, outputs], axis=-1)
        return {PROBABILITIES: outputs, CLASSES: tf.tile(names[None], [tf.shape(outputs)[0], 1])}

    def spec(dtype: tf.DType) -> tf.TensorSpec:
        return tf.TensorSpec((None, None, None, 3), dtype, name=INPUT)

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVE, lambda images: answer(tf.cast(images, tf.float32)),
                         input_signature=[spec(tf.uint8)])
    if float_input:
        archive.add_endpoint(SERVE_FLOAT, answer, input_signature=[spec(tf.float32)])
    return archive


def write_savedmodel(model: keras.Model, class_names: Sequence[str], image_size: int,
                     folder: Path) -> None:
    """The SavedModel with both endpoints, written to ``folder`` (which must not exist)."""
    serving_archive(model, class_names, image_size).write_out(str(folder), verbose=False)


def write_tflite(model: keras.Model, class_names: Sequence[str], image_size: int,
                 path: Path) -> None:
    """The TFLite model of the ``serve`` endpoint, written to ``path``.

    Converted from a SavedModel as Keras' own ``litert`` export does, with the same op sets;
    the input's height and width stay dynamic (``shape_signature`` ``[-1, -1, -1, 3]``), so
    a signature runner takes a photo of any size as it is.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="small-data-tflite-") as folder:
        saved = Path(folder) / "savedmodel"
        serving_archive(model, class_names, image_size, float_input=False).write_out(
            str(saved), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[SERVE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                               tf.lite.OpsSet.SELECT_TF_OPS]
        converter.experimental_enable_resource_variables = True
        path.write_bytes(converter.convert())
