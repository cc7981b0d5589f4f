"""Cached augmented views: computed once per view, reused, resumed, drawn once per epoch."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.cache.views import (
    ViewBatches,
    ViewCache,
    ViewsKey,
    augmented_view_computer,
)
from pipeline.data.augment import AugmentConfig, build_augmentation

COUNT, SIZE = 10, 24


def _images_and_labels():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (COUNT, SIZE, SIZE, 3)).astype("float32")
    labels = (np.arange(COUNT) % 2).astype("float32").reshape(-1, 1)
    return images, labels


def _bottom() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    return keras.Model(inputs, x)


def _setup(tmp_path, calls=None):
    images, labels = _images_and_labels()
    bottom = _bottom()

    def batches():
        for start in range(0, COUNT, 4):
            yield images[start:start + 4], labels[start:start + 4]

    augmentation = AugmentConfig()
    compute = augmented_view_computer(
        bottom, batches, lambda seed: build_augmentation(augmentation, None, seed=seed),
        seed=7, verbose=0,
    )

    def counting(view, out):
        if calls is not None:
            calls.append(view)
        compute(view, out)

    key = ViewsKey.make("features-digest", "conv", vars(augmentation), seed=7)
    shape = tuple(bottom.output.shape[1:])
    return ViewCache(tmp_path), key, labels, shape, counting, bottom, images


def test_views_differ_from_each_other_and_from_the_plain_output(tmp_path):
    cache, key, labels, shape, compute, bottom, images = _setup(tmp_path)
    cached = cache.ensure(key, 3, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    assert len(cached.views) == 3 and cached.computed == 3
    plain = np.asarray(bottom.predict_on_batch(images))
    for view in cached.views:
        assert view.shape == plain.shape
        assert not np.allclose(view, plain)
    assert not np.allclose(cached.views[0], cached.views[1])
    np.testing.assert_array_equal(cached.labels, labels)


def test_a_later_run_reuses_views_and_computes_only_the_missing_ones(tmp_path):
    calls: list[int] = []
    cache, key, labels, shape, compute, _, _ = _setup(tmp_path, calls)
    first = cache.ensure(key, 2, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    again = cache.ensure(key, 2, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    more = cache.ensure(key, 4, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    assert calls == [0, 1, 2, 3]
    assert again.computed == 0 and more.computed == 2
    np.testing.assert_array_equal(more.views[1], first.views[1])


def test_a_view_is_the_same_whenever_it_is_computed(tmp_path):
    cache, key, labels, shape, compute, _, _ = _setup(tmp_path / "a")
    other, *_ = _setup(tmp_path / "b")
    one = cache.ensure(key, 2, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    two = other.ensure(key, 2, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    np.testing.assert_allclose(two.views[1], one.views[1], rtol=1e-6)


def test_a_view_does_not_depend_on_the_views_computed_before_it(tmp_path):
    # One computer reuses its augmentation layer and graph across views, reseeding the layer:
    # view 2 after views 0 and 1 equals view 2 computed first by a fresh computer.
    *_, after_others, bottom, _ = _setup(tmp_path / "a")
    *_, fresh, _, _ = _setup(tmp_path / "b")
    shape = (COUNT, *bottom.output.shape[1:])
    outputs = [np.zeros(shape, "float32") for _ in range(4)]
    for view in range(3):
        after_others(view, outputs[view])
    fresh(2, outputs[3])
    np.testing.assert_array_equal(outputs[3], outputs[2])
    assert not np.allclose(outputs[2], outputs[1])


def test_an_interrupted_computation_keeps_finished_views_and_resumes(tmp_path, capsys):
    calls: list[int] = []
    cache, key, labels, shape, compute, _, _ = _setup(tmp_path, calls)

    def stop_at_view_two(view, out):
        if view == 2:
            out[:1] = 1.0  # a part-filled array that must never be used
            raise KeyboardInterrupt
        compute(view, out)

    with pytest.raises(KeyboardInterrupt):
        cache.ensure(key, 4, labels=labels, feature_shape=shape, compute=stop_at_view_two,
                     verbose=0)
    folder = cache.folder(key)
    assert sorted(p.name for p in folder.glob("view-*.npy")) == ["view-000.npy", "view-001.npy"]
    assert (f"Interrupted (Ctrl-C): 2 of 4 views kept in {folder}; the same command continues"
            in capsys.readouterr().err)
    assert not list(folder.glob(".*.tmp"))
    calls.clear()
    resumed = cache.ensure(key, 4, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    assert calls == [2, 3] and resumed.computed == 2


def test_other_augmentation_settings_get_other_views(tmp_path):
    cache, key, *_ = _setup(tmp_path)
    other = ViewsKey.make("features-digest", "conv", {"zoom": 0.5}, seed=7)
    assert cache.folder(other) != cache.folder(key)
    assert ViewsKey.make("features-digest", "conv", {"zoom": 0.5}, seed=8).digest() != \
        other.digest()


def test_each_epoch_shows_every_image_once_through_one_of_its_views(tmp_path):
    cache, key, labels, shape, compute, _, _ = _setup(tmp_path)
    cached = cache.ensure(key, 3, labels=labels, feature_shape=shape, compute=compute, verbose=0)
    batches = ViewBatches(cached, batch_size=4, seed=1)
    used_views = set()
    for _ in range(3):
        rows_seen = []
        for index in range(len(batches)):
            features, batch_labels = batches[index]
            for feature, label in zip(features, batch_labels, strict=True):
                matches = [(v, r) for v in range(3) for r in range(COUNT)
                           if np.array_equal(cached.views[v][r], feature)]
                assert len(matches) == 1
                view, row = matches[0]
                assert label == labels[row]
                rows_seen.append(row)
                used_views.add(view)
        assert sorted(rows_seen) == list(range(COUNT))
        batches.on_epoch_end()
    assert used_views == {0, 1, 2}
