"""Cached features stand for the photos the manifest lists: checked every time they are used."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.cache.dataset_features import FeatureSource, derived_features, image_features
from pipeline.cache.features import FeatureCache
from pipeline.data.manifest import manifest_checksum, read_manifest
from pipeline.errors import PipelineError
from pipeline.models.transfer import split_at

SIZE = 32


@pytest.fixture
def dataset(tmp_path):
    from pipeline.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path / "data", sizes=(4, 2, 2), image_size=SIZE, seed=5)


def tiny_models() -> tuple[keras.Model, keras.Model, keras.Model]:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, name="conv")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    full = keras.Model(inputs, outputs)
    bottom, top = split_at(full, "pool")
    return full, bottom, top


def source_of(dataset) -> FeatureSource:
    return FeatureSource(dataset, manifest_checksum(read_manifest(dataset)), "tiny", SIZE,
                         "none", batch_size=3, verbose=0)


def test_cached_features_are_not_reused_for_photos_replaced_after_prepare(dataset, tmp_path):
    full, bottom, top = tiny_models()
    cache = FeatureCache(tmp_path / "features")
    made, middle = derived_features(cache, full, bottom, top, source_of(dataset), "train")
    assert not made.reused and middle is not None and made.count == 8
    np.testing.assert_allclose(np.asarray(made.features),
                               top.predict(np.asarray(middle.features), verbose=0), rtol=1e-5)
    again, _ = derived_features(cache, full, bottom, top, source_of(dataset), "train")
    assert again.reused

    photo = sorted((dataset / "test" / "cat").iterdir())[0]
    photo.write_bytes(photo.read_bytes()[:-4] + b"\x00\x01\x02\x03")  # replaced, same size
    for compute in (lambda: derived_features(cache, full, bottom, top, source_of(dataset),
                                             "train"),
                    lambda: image_features(cache, bottom, source_of(dataset), "train")):
        with pytest.raises(PipelineError, match=f"test/cat/{photo.name} \\(content changed\\)"):
            compute()
