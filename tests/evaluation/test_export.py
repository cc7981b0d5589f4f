"""Exported models answer like the Keras model they came from, on raw images."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.errors import PipelineError
from pipeline.evaluation.export import DEFAULT_NAMES, export_model, inference_copy
from pipeline.models.preprocessing import ImagePreprocessing

SIDE = 32
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """A model shaped like ours: raw images -> augmentation -> preprocessing -> convs -> sigmoid."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 3), name="image")
    augmentation = keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)],
        name="augmentation",
    )
    x = augmentation(inputs)
    x = ImagePreprocessing("caffe", name="preprocess")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Four raw images, float32 in 0..255: two noise, one gradient, one flat."""
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 255, (2, SIDE, SIDE, 3))
    ramp = np.broadcast_to(np.linspace(0, 255, SIDE)[None, :, None], (SIDE, SIDE, 3))[None]
    flat = np.full((1, SIDE, SIDE, 3), 200.0)
    return np.concatenate([noise, ramp, flat]).astype("float32")


def _expected(model: keras.Model, images: np.ndarray) -> np.ndarray:
    predictions = model.predict(images, verbose=0)
    assert predictions.std() > 1e-4, "the test images should get different predictions"
    return predictions


def test_inference_copy_drops_augmentation_and_keeps_weights(model, images):
    copy = inference_copy(model)
    assert "augmentation" not in [layer.name for layer in copy.layers]
    assert copy is not model and "augmentation" in [layer.name for layer in model.layers]
    np.testing.assert_allclose(copy.predict(images, verbose=0), _expected(model, images), atol=1e-6)


def test_savedmodel_answers_like_keras(model, images, tmp_path):
    out = export_model(model, tmp_path / "served", "savedmodel")
    assert out == tmp_path / "served" and (out / "saved_model.pb").is_file()
    loaded = tf.saved_model.load(str(out))
    np.testing.assert_allclose(
        loaded.serve(images).numpy(), _expected(model, images), atol=TOLERANCE
    )
    assert [p.name for p in tmp_path.iterdir()] == ["served"], "no temporary left behind"


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_tflite_answers_like_keras(model, images, tmp_path):
    out = export_model(model, tmp_path / "model.tflite", "tflite")
    interpreter = tf.lite.Interpreter(model_path=str(out))
    given, answer = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(given["index"], images.shape)  # the batch size is free
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], images)
    interpreter.invoke()
    np.testing.assert_allclose(
        interpreter.get_tensor(answer["index"]), _expected(model, images), atol=TOLERANCE
    )


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("tf2onnx", "onnx", "onnxruntime")),
    reason="ONNX export needs tf2onnx, onnx and onnxruntime: pip install '.[onnx]'",
)
def test_onnx_answers_like_keras(model, images, tmp_path):
    import onnxruntime

    out = export_model(model, tmp_path / "model.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    (predictions,) = session.run(None, {given.name: images})
    np.testing.assert_allclose(predictions, _expected(model, images), atol=TOLERANCE)


def test_mixed_precision_model_is_exported_in_float32(images, tmp_path):
    inputs = keras.Input((SIDE, SIDE, 3))
    x = ImagePreprocessing("tf", dtype="mixed_float16")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", dtype="mixed_float16")(x)
    x = keras.layers.GlobalAveragePooling2D(dtype="mixed_float16")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    copy = inference_copy(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    np.testing.assert_allclose(copy.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=5e-3)  # float16 rounding in the original only


def test_existing_output_is_refused_unless_forced(model, images, tmp_path):
    out = tmp_path / "model.tflite"
    export_model(model, out, "tflite")
    first = out.read_bytes()
    with pytest.raises(PipelineError, match=r"already exists.*`force`"):
        export_model(model, out, "tflite")
    assert out.read_bytes() == first
    export_model(model, out, "tflite", force=True)
    assert out.read_bytes()[4:8] == b"TFL3"  # the FlatBuffer identifier of a TFLite model


def test_force_never_replaces_a_file_an_export_did_not_write(model, tmp_path):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"my own notes")
    with pytest.raises(PipelineError, match="replaces only what an export wrote"):
        export_model(model, out, "tflite", force=True)
    assert out.read_bytes() == b"my own notes"
    exported = tmp_path / "served.tflite"
    export_model(model, exported, "tflite")
    exported.write_bytes(b"edited by hand")  # an export, changed since: not ours any more
    with pytest.raises(PipelineError, match="was changed since it was exported"):
        export_model(model, exported, "tflite", force=True)
    assert exported.read_bytes() == b"edited by hand"


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_an_existing_folder_is_written_into_never_replaced(model, tmp_path, fmt):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.jpg").write_bytes(b"a photo")
    for force in (False, True):
        written = export_model(model, out, fmt, force=force)
        assert written == out / DEFAULT_NAMES[fmt]
        assert (out / "cat.jpg").read_bytes() == b"a photo"


def test_the_current_folder_is_written_into(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = export_model(model, Path("."), "savedmodel", force=True)
    assert written == Path("savedmodel") and (tmp_path / "savedmodel" / "saved_model.pb").is_file()


def test_forced_savedmodel_replaces_only_an_untouched_export(model, tmp_path):
    out = tmp_path / "served"
    export_model(model, out, "savedmodel")
    assert export_model(model, out, "savedmodel", force=True) == out
    assert (out / "saved_model.pb").is_file()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="holds files its export did not write"):
        export_model(model, out, "savedmodel", force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["served"]


def test_unknown_format_is_refused(model, tmp_path):
    with pytest.raises(PipelineError, match=r"`fmt` 'pickle'.*savedmodel, tflite, onnx"):
        export_model(model, tmp_path / "model.pkl", "pickle")
    assert not (tmp_path / "model.pkl").exists()


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_export_command_round_trips_a_run(fmt, tiny_run, synthetic_dataset, tmp_path):
    """`export RUN`: the exported file answers raw images exactly as the run's Keras model."""
    from click.testing import CliRunner

    from cli import main
    from pipeline.data.image_file import load_image_array
    from pipeline.models.saving import load_model

    out = tmp_path / ("served" if fmt == "savedmodel" else "model.tflite")
    result = CliRunner().invoke(main, ["export", str(tiny_run.path), "--format", fmt,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"wrote {out}" in result.output
    size = tiny_run.record().image_size
    photos = sorted((synthetic_dataset / "test").rglob("*.jpg"))[:4]
    images = np.stack([load_image_array(photo, size) for photo in photos])
    expected = load_model(tiny_run.model_path("best")).predict(images, verbose=0)
    if fmt == "savedmodel":
        served = tf.saved_model.load(str(out))  # kept: serve() needs its variables alive
        answered = served.serve(images).numpy()
    else:
        interpreter = tf.lite.Interpreter(model_path=str(out))
        given, answer = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        interpreter.resize_tensor_input(given["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], images)
        interpreter.invoke()
        answered = interpreter.get_tensor(answer["index"])
    np.testing.assert_allclose(answered, expected, atol=TOLERANCE)
    again = CliRunner().invoke(main, ["export", str(tiny_run.path), "--format", fmt,
                                      "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
