"""The conv base registry: each base builds flat, has a top block, and refuses bad sizes."""

from __future__ import annotations

import keras
import pytest

from pipeline.errors import PipelineError
from pipeline.models.bases import BASES, get_base
from pipeline.models.transfer import base_layers, build_features_model, split_at
from pipeline.models.weights import WeightsChoice

# The stage prefix of each base's top block: every layer from the top block on has it.
STAGE = {
    "vgg16": ("block5_",),
    "resnet50": ("conv5_",),
    "mobilenet_v2": ("block_16_", "Conv_1", "out_relu"),
    "xception": ("block14_",),
    "efficientnet_b0": ("block7a_", "top_"),
    "efficientnet_lite0": ("block7a_", "top_"),
    "efficientnet_lite1": ("block7a_", "top_"),
    "efficientnet_lite2": ("block7a_", "top_"),
}


def test_offers_the_bases_the_book_and_issue_name():
    assert set(BASES) >= set(STAGE)


def test_unknown_base_says_which_exist():
    with pytest.raises(PipelineError, match="vgg16"):
        get_base("alexnet")


def test_too_small_image_is_refused_with_the_minimum():
    with pytest.raises(PipelineError, match="at least 71"):
        get_base("xception").check_image_size(64)
    get_base("xception").check_image_size(71)


def test_every_base_has_a_natural_size_and_a_way_to_be_built():
    sizes = {name: base.default_image_size for name, base in BASES.items()}
    assert sizes["vgg16"] == 150  # the book's size
    assert (sizes["efficientnet_lite0"], sizes["efficientnet_lite1"],
            sizes["efficientnet_lite2"]) == (224, 240, 260)
    for base in BASES.values():
        assert base.min_image_size <= base.default_image_size
        assert (base.constructor is None) != (base.builder is None), base.name


def test_mobilenet_v2_weight_file_follows_the_input_size():
    base = get_base("mobilenet_v2")
    assert base.imagenet_filename(160).endswith("_1.0_160_no_top.h5")
    assert base.imagenet_filename(150).endswith("_1.0_224_no_top.h5")


@pytest.mark.parametrize("name", sorted(STAGE))
def test_top_block_is_the_last_stage_and_has_a_cacheable_split_point(name):
    base = get_base(name)
    size = base.min_image_size
    model = build_features_model(base, WeightsChoice("none", "none", None, None, ""), size)
    names = [layer.name for layer in base_layers(model)]
    start = names.index(base.top_block)
    assert all(n.startswith(STAGE[name]) for n in names[start:]), names[start:]
    assert not any(n.startswith(STAGE[name]) for n in names[:start])
    # The flat graph: keras.applications names are reachable on the outer model.
    assert model.get_layer(base.top_block) is not None
    bottom, top = split_at(model, base.top_block)  # one tensor carries everything upward
    assert isinstance(top, keras.Model) and bottom.output.shape[0] is None
