"""Heads: the book's Flatten-Dense-Dropout head, global average pooling, and their names."""

from __future__ import annotations

import keras
import pytest

from pipeline.errors import PipelineError
from pipeline.models.heads import HEADS, HeadOptions, build_head, head_layers


def test_flatten_head_is_the_books_recipe():
    head = build_head("flatten", (4, 4, 512), 2)
    layers = head.layers[1:]
    assert [type(layer).__name__ for layer in layers] == ["Flatten", "Dense", "Dropout", "Dense"]
    assert layers[1].units == 256 and layers[1].activation.__name__ == "relu"
    assert layers[2].rate == 0.5
    assert layers[3].name == "predictions" and layers[3].units == 1
    assert head.output.shape == (None, 1)


def test_gap_head_pools_then_drops_out():
    head = build_head("gap", (4, 4, 512), 3, HeadOptions(dropout=0.3))
    assert [type(layer).__name__ for layer in head.layers[1:]] == [
        "GlobalAveragePooling2D", "Dropout", "Dense"]
    assert head.output.shape == (None, 3)
    assert head.count_params() == 512 * 3 + 3


def test_spp_head_keeps_a_coarse_layout_and_loads_back(tmp_path):
    head = build_head("spp", (4, 4, 512), 2)
    assert head.get_layer("head_dense").input.shape == (None, 21 * 512)  # 1 + 4 + 16 bins
    head.save(tmp_path / "head.keras")
    assert keras.models.load_model(tmp_path / "head.keras", safe_mode=True).count_params() == (
        head.count_params())


def test_zero_dense_and_dropout_leave_those_layers_out():
    head = build_head("flatten", (2, 2, 8), 2, HeadOptions(dense=0, dropout=0.0))
    assert [type(layer).__name__ for layer in head.layers[1:]] == ["Flatten", "Dense"]


def test_bad_head_options_are_refused():
    with pytest.raises(PipelineError, match="`head`"):
        build_head("netvlad-please", (2, 2, 8), 2)
    with pytest.raises(PipelineError, match="`dropout`"):
        build_head("flatten", (2, 2, 8), 2, HeadOptions(dropout=1.0))


def test_a_registered_head_must_name_its_layers_head_(monkeypatch):
    monkeypatch.setitem(HEADS, "bad", lambda options: [keras.layers.Flatten(name="flat")])
    with pytest.raises(ValueError, match="head_"):
        head_layers("bad", 2, HeadOptions())
    monkeypatch.setitem(HEADS, "max", lambda options: [
        keras.layers.GlobalMaxPooling2D(name="head_max")])
    assert build_head("max", (3, 3, 4), 2).output.shape == (None, 1)
