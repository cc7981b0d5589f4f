"""RandomAffine: the layer contract, the geometry of its one matrix, its draws' ranges."""

import math

import keras
import numpy as np
import pytest

from pipeline.data.random_affine import RandomAffine, affine_matrices, resample
from tests.layers.contract import run_layer_contract, to_numpy

CLASSIC = dict(rotation=40.0, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2,
               horizontal_flip=True)


def _images(batch=8, size=9, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def test_layer_contract(tmp_path):
    # fit runs the layer with training=True, so the compiled step resamples.
    run_layer_contract(RandomAffine, dict(CLASSIC, seed=3), (4, 9, 9, 3), tmp_path)


def test_is_the_identity_at_inference_and_moves_pixels_in_training():
    layer = RandomAffine(**CLASSIC, seed=1)
    images = _images()
    np.testing.assert_array_equal(to_numpy(layer(images, training=False)), images)
    moved = to_numpy(layer(images, training=True))
    assert moved.shape == images.shape and moved.dtype == images.dtype
    assert not np.allclose(moved, images)


def test_flip_alone_mirrors_some_images_and_keeps_the_others_exactly():
    images = _images(batch=32, size=8)
    out = to_numpy(RandomAffine(horizontal_flip=True, seed=2)(images, training=True))
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, images, strict=True)]
    kept = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 4 <= sum(mirrored) <= 28  # a fair coin per image, not one for the batch


@pytest.mark.parametrize("size", [9, 10])
def test_rotation_shear_zoom_and_flip_keep_the_centre_in_place(size):
    # Without shifts every part is about the centre ((size - 1) / 2), so the centre reads itself.
    images = _images(batch=16, size=size)
    layer = RandomAffine(rotation=40, shear=0.2, zoom=0.2, horizontal_flip=True,
                         interpolation="nearest", seed=4)
    transforms = to_numpy(layer.transforms(16, size, size))
    centre = (size - 1) / 2
    a0, a1, a2, b0, b1, b2 = transforms[:, :6].T
    np.testing.assert_allclose(a0 * centre + a1 * centre + a2, centre, atol=1e-4)
    np.testing.assert_allclose(b0 * centre + b1 * centre + b2, centre, atol=1e-4)
    if size % 2:
        out = to_numpy(layer(images, training=True))
        np.testing.assert_array_equal(out[:, size // 2, size // 2], images[:, size // 2, size // 2])


def test_each_part_draws_within_its_range():
    n, size = 512, 20
    rotation = to_numpy(RandomAffine(rotation=30, seed=0).transforms(n, size, size))
    angles = np.degrees(np.arctan2(rotation[:, 3], rotation[:, 0]))
    assert np.abs(angles).max() <= 30 + 1e-3 and np.abs(angles).max() > 25
    np.testing.assert_allclose(rotation[:, 0] ** 2 + rotation[:, 3] ** 2, 1.0, atol=1e-5)

    zoom = to_numpy(RandomAffine(zoom=0.2, seed=0).transforms(n, size, size))
    assert zoom[:, 0].min() >= 0.8 - 1e-6 and zoom[:, 0].max() <= 1.2 + 1e-6
    assert not np.allclose(zoom[:, 0], zoom[:, 4])  # width and height zoom drawn apart
    np.testing.assert_array_equal(zoom[:, [1, 3]], 0.0)

    shift = to_numpy(RandomAffine(width_shift=0.25, height_shift=0.1, seed=0)
                     .transforms(n, size, size))
    np.testing.assert_array_equal(shift[:, [0, 4]], 1.0)
    assert np.abs(shift[:, 2]).max() <= 0.25 * size + 1e-4
    assert np.abs(shift[:, 2]).max() > 0.2 * size
    assert np.abs(shift[:, 5]).max() <= 0.1 * size + 1e-4

    shear = to_numpy(RandomAffine(shear=0.2, seed=0).transforms(n, size, size))
    assert np.abs(shear[:, 1]).max() <= 0.2 + 1e-6 and np.abs(shear[:, 3]).max() <= 0.2 + 1e-6


def test_one_resampling_equals_the_parts_applied_one_after_another():
    # A smooth image, so that resampling it four times loses almost nothing: the single matrix
    # then gives what shifting, flipping, rotating, shearing and zooming in turn give.
    size = 48
    grid = np.arange(size, dtype="float32")
    smooth = (np.sin(grid / 7.0)[:, None] * np.cos(grid / 5.0)[None, :] * 100 + 128)
    image = np.repeat(smooth[None, :, :, None], 3, axis=3).astype("float32")
    identity = dict(flip=1.0, angle=0.0, shear_x=0.0, shear_y=0.0, zoom_x=1.0, zoom_y=1.0,
                    shift_x=0.0, shift_y=0.0)
    parts = [dict(shift_x=3.0, shift_y=-2.0), dict(flip=-1.0), dict(angle=math.radians(20)),
             dict(shear_x=0.1, shear_y=-0.15), dict(zoom_x=0.9, zoom_y=1.1)]

    def matrix(**given):
        values = {name: np.array([value], "float32")
                  for name, value in {**identity, **given}.items()}
        return affine_matrices(float(size), float(size), **values)

    def moved(images, transform):
        return to_numpy(resample(images, transform, fill_mode="reflect"))

    once = moved(image, matrix(**{k: v for part in parts for k, v in part.items()}))
    in_turn = image
    for part in parts:
        in_turn = moved(in_turn, matrix(**part))
    inner = slice(12, size - 12)  # away from the borders, where the fills differ
    np.testing.assert_allclose(once[0, inner, inner], in_turn[0, inner, inner], atol=1.5)
    assert np.abs(once - image).max() > 20  # and the map did move the image


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="rotation must be a finite number"):
        RandomAffine(rotation=-1)
    with pytest.raises(ValueError, match="fill_mode"):
        RandomAffine(fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation"):
        RandomAffine(interpolation="bicubicish")


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap", "constant"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_resampling_agrees_with_keras_affine_transform(fill_mode, interpolation):
    # Keras' own op is the reference; the gathers differ from it only at sub-pixel details of
    # the border fill, so the interior agrees exactly and the whole image almost everywhere.
    images = _images(batch=6, size=24, seed=5)
    layer = RandomAffine(**CLASSIC, seed=6)
    transforms = layer.transforms(6, 24, 24)
    mine = to_numpy(resample(images, transforms, interpolation, fill_mode))
    reference = to_numpy(keras.ops.image.affine_transform(
        images, transforms, interpolation=interpolation, fill_mode=fill_mode))
    close = np.isclose(mine, reference, atol=0.05)
    # Along the seams of `wrap` TensorFlow's kernel reads other pixels than the documented
    # tiling (a b c d | a b c d) that the gathers follow: 93-97% of values agreed there.
    assert close.mean() > (0.9 if fill_mode == "wrap" else 0.97), close.mean()
    np.testing.assert_allclose(mine[:, 10:14, 10:14], reference[:, 10:14, 10:14], atol=0.05)
