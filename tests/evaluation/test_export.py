"""Exported models answer like the Keras model they came from, and like ``predict``, on raw
photos of any size; their class names travel with them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.evaluation.export import DEFAULT_NAMES, export_model, inference_copy, labels_file
from pipeline.models.preprocessing import ImagePreprocessing

SIDE = 32
TOLERANCE = 1e-5
NAMES = ("cat", "dog")


def export(model, output, fmt="savedmodel", **options):
    """``export_model`` of the test model, which has no run to name its classes."""
    return export_model(model, output, fmt, class_names=NAMES, **options)


def tflite_answer(path, images: np.ndarray) -> dict[str, np.ndarray]:
    """The TFLite model's ``serve`` signature on ``images`` (any batch, height and width)."""
    return tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serve")(images=images)


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


def _probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """What the served model answers: the sigmoid's p as the two columns [1 - p, p]."""
    p = _expected(model, images)
    return np.hstack([1 - p, p])


def test_inference_copy_drops_augmentation_and_keeps_weights(model, images):
    copy = inference_copy(model)
    assert "augmentation" not in [layer.name for layer in copy.layers]
    assert copy is not model and "augmentation" in [layer.name for layer in model.layers]
    np.testing.assert_allclose(copy.predict(images, verbose=0), _expected(model, images), atol=1e-6)


def test_savedmodel_answers_like_keras(model, images, tmp_path):
    out = export(model, tmp_path / "served", "savedmodel")
    assert out == tmp_path / "served" and (out / "saved_model.pb").is_file()
    assert (out / "labels.txt").read_text() == "cat\ndog\n"
    loaded = tf.saved_model.load(str(out))
    assert {"serving_default", "serve", "serve_float32"} <= set(loaded.signatures)
    as_bytes = loaded.serve(images.round().astype(np.uint8))
    np.testing.assert_allclose(as_bytes["probabilities"].numpy(),
                               _probabilities(model, images.round()), atol=TOLERANCE)
    assert as_bytes["classes"].numpy().tolist() == [[b"cat", b"dog"]] * len(images)
    as_floats = loaded.signatures["serve_float32"](images=tf.constant(images))
    np.testing.assert_allclose(as_floats["probabilities"].numpy(),
                               _probabilities(model, images), atol=TOLERANCE)
    assert [p.name for p in tmp_path.iterdir()] == ["served"], "no temporary left behind"


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_tflite_answers_like_keras(model, images, tmp_path):
    out = export(model, tmp_path / "model.tflite", "tflite")
    assert labels_file(out, "tflite").read_text() == "cat\ndog\n"
    given = tf.lite.Interpreter(model_path=str(out)).get_input_details()[0]
    assert given["dtype"] == np.uint8 and given["shape_signature"].tolist() == [-1, -1, -1, 3]
    pixels = images.round().astype(np.uint8)
    answer = tflite_answer(out, pixels)
    np.testing.assert_allclose(answer["probabilities"], _probabilities(model, images.round()),
                               atol=TOLERANCE)
    assert answer["classes"].tolist() == [[b"cat", b"dog"]] * len(images)


def test_the_resize_inside_is_trainings(model, tmp_path):
    """A photo of another size is resized in the graph as ``load_image_array`` resizes it."""
    out = export(model, tmp_path / "served", "savedmodel")
    photo = np.random.default_rng(3).integers(0, 256, (1, 90, 64, 3), dtype=np.uint8)
    resized = tf.image.resize(photo.astype("float32"), (SIDE, SIDE), method="bilinear").numpy()
    served = tf.saved_model.load(str(out))  # kept: serve() needs its variables alive
    answer = served.serve(photo)["probabilities"].numpy()
    p = model.predict(resized, verbose=0)
    np.testing.assert_allclose(answer, np.hstack([1 - p, p]), atol=TOLERANCE)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_a_softmax_model_answers_its_own_probabilities(tmp_path):
    """N classes: the softmax's columns are the probabilities, as they are, in both formats."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = ImagePreprocessing("tf")(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    softmax = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    names = ("iris", "pansy", "tulip", "windflower")
    photos = np.random.default_rng(6).integers(0, 256, (3, 70, 45, 3), dtype=np.uint8)
    resized = tf.image.resize(photos.astype("float32"), (SIDE, SIDE), method="bilinear")
    expected = softmax.predict(resized, verbose=0)
    saved = export_model(softmax, tmp_path / "served", class_names=names)
    served = tf.saved_model.load(str(saved))
    lite = tflite_answer(export_model(softmax, tmp_path / "m.tflite", "tflite",
                                      class_names=names), photos)
    for answer in (served.serve(photos), lite):
        np.testing.assert_allclose(np.asarray(answer["probabilities"]), expected, atol=TOLERANCE)
        assert np.asarray(answer["classes"]).tolist() == [[n.encode() for n in names]] * 3


def test_class_names_must_fit_the_model(model, tmp_path):
    with pytest.raises(PipelineError, match="`class_names`: give the model's class names"):
        export_model(model, tmp_path / "served")
    with pytest.raises(PipelineError, match="lists 3 classes, but the model outputs 1"):
        export_model(model, tmp_path / "served", class_names=("a", "b", "c"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("tf2onnx", "onnx", "onnxruntime")),
    reason="ONNX export needs tf2onnx, onnx and onnxruntime: pip install '.[onnx]'",
)
def test_onnx_answers_like_keras(model, images, tmp_path):
    import onnxruntime

    out = export(model, tmp_path / "model.onnx", "onnx")
    assert labels_file(out, "onnx").read_text() == "cat\ndog\n"
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
    export(model, out, "tflite")
    first = out.read_bytes()
    with pytest.raises(PipelineError, match=r"already exists.*`force`"):
        export(model, out, "tflite")
    assert out.read_bytes() == first
    export(model, out, "tflite", force=True)
    assert out.read_bytes()[4:8] == b"TFL3"  # the FlatBuffer identifier of a TFLite model


def test_force_never_replaces_a_file_an_export_did_not_write(model, tmp_path):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"my own notes")
    with pytest.raises(PipelineError, match="replaces only what an export wrote"):
        export(model, out, "tflite", force=True)
    assert out.read_bytes() == b"my own notes"
    exported = tmp_path / "served.tflite"
    export(model, exported, "tflite")
    exported.write_bytes(b"edited by hand")  # an export, changed since: not ours any more
    with pytest.raises(PipelineError, match="was changed since it was exported"):
        export(model, exported, "tflite", force=True)
    assert exported.read_bytes() == b"edited by hand"


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_an_existing_folder_is_written_into_never_replaced(model, tmp_path, fmt):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.jpg").write_bytes(b"a photo")
    for force in (False, True):
        written = export(model, out, fmt, force=force)
        assert written == out / DEFAULT_NAMES[fmt]
        assert (out / "cat.jpg").read_bytes() == b"a photo"


def test_the_current_folder_is_written_into(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = export(model, Path("."), "savedmodel", force=True)
    assert written == Path("savedmodel") and (tmp_path / "savedmodel" / "saved_model.pb").is_file()


def test_forced_savedmodel_replaces_only_an_untouched_export(model, tmp_path):
    out = tmp_path / "served"
    export(model, out, "savedmodel")
    assert export(model, out, "savedmodel", force=True) == out
    assert (out / "saved_model.pb").is_file()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="holds files its export did not write"):
        export(model, out, "savedmodel", force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["served"]


def test_unknown_format_is_refused(model, tmp_path):
    with pytest.raises(PipelineError, match=r"`fmt` 'pickle'.*savedmodel, tflite, onnx"):
        export(model, tmp_path / "model.pkl", "pickle")
    assert not (tmp_path / "model.pkl").exists()


def test_force_never_replaces_labels_an_export_did_not_write(model, tmp_path):
    out = tmp_path / "model.tflite"
    labels = labels_file(out, "tflite")
    labels.write_text("my own list")
    with pytest.raises(PipelineError, match="no export beside it wrote it"):
        export(model, out, "tflite", force=True)
    assert labels.read_text() == "my own list" and not out.exists()
    labels.unlink()
    export(model, out, "tflite")
    labels.write_text("edited")
    with pytest.raises(PipelineError, match=r"model\.tflite\.labels\.txt beside it that its"):
        export(model, out, "tflite", force=True)
    assert labels.read_text() == "edited"


@pytest.fixture(scope="module")
def raw_photos(tmp_path_factory) -> list[Path]:
    """Photos of three sizes and shapes, none at the model's side: JPEGs and a PNG."""
    folder = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(5)
    photos = []
    for index, (width, height, kind) in enumerate(
        ((300, 200, "JPEG"), (64, 90, "JPEG"), (48, 48, "JPEG"), (120, 77, "PNG"))
    ):
        shapes = np.zeros((height, width, 3))
        shapes[height // 4: height // 2, :, index % 3] = 220  # a stripe, so classes differ
        pixels = np.clip(shapes + rng.normal(90, 40, shapes.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{index}.{kind.lower()}"
        Image.fromarray(pixels).save(path, format=kind)
        photos.append(path)
    return photos


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_exported_run_answers_like_predict_on_raw_photos(fmt, tiny_run, raw_photos, tmp_path):
    """`export RUN`: fed each photo's decoded pixels as they are (uint8, its own size), the
    exported model gives every class the probability `predict` gives it."""
    from click.testing import CliRunner

    from cli import main
    from pipeline.data.image_file import read_rgb_image
    from pipeline.evaluation.predict import predict_paths

    out = tmp_path / ("served" if fmt == "savedmodel" else "model.tflite")
    result = CliRunner().invoke(main, ["export", str(tiny_run.path), "--format", fmt,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"wrote {out}" in result.output and "any size" in result.output
    names = tiny_run.record().class_names
    assert labels_file(out, fmt).read_text().splitlines() == names
    served = tf.saved_model.load(str(out)) if fmt == "savedmodel" else None
    rows = predict_paths(tiny_run.path, raw_photos)
    for photo, row in zip(raw_photos, rows, strict=True):
        pixels = np.asarray(read_rgb_image(photo))[None]
        assert pixels.dtype == np.uint8
        answer = (served.serve(pixels) if served else tflite_answer(out, pixels))
        answer = {key: np.asarray(value) for key, value in answer.items()}
        assert [name.decode() for name in answer["classes"][0]] == names
        np.testing.assert_allclose(answer["probabilities"][0],
                                   [row.probabilities[name] for name in names], atol=TOLERANCE)
        assert names[int(np.argmax(answer["probabilities"][0]))] == row.label
    spread = [row.probabilities[names[1]] for row in rows]
    assert max(spread) - min(spread) > 1e-4, "the photos should get different answers"
    again = CliRunner().invoke(main, ["export", str(tiny_run.path), "--format", fmt,
                                      "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
