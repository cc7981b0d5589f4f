"""Hand-made 3x3 kernels do what their names say."""

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.visualize.kernels import KERNELS, convolve3x3, kernel, write_kernel_effects


def test_identity_keeps_the_image_and_blurs_keep_flat_areas():
    image = np.random.default_rng(0).uniform(0, 255, (9, 7, 3)).astype("float32")
    np.testing.assert_allclose(convolve3x3(image, kernel("identity")), image)
    flat = np.full((6, 6, 3), 100.0, dtype="float32")
    for name in ("box blur", "Gaussian blur", "sharpen"):
        np.testing.assert_allclose(convolve3x3(flat, kernel(name)), flat, rtol=1e-6)
    for name in ("edge detection", "edge detection (diagonals too)"):
        np.testing.assert_allclose(convolve3x3(flat, kernel(name)), 0, atol=1e-4)


def test_a_single_bright_pixel_spreads_into_the_kernel():
    dot = np.zeros((5, 5, 1), dtype="float32")
    dot[2, 2] = 16.0
    out = convolve3x3(dot, kernel("Gaussian blur"))[..., 0]
    np.testing.assert_allclose(out[1:4, 1:4], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert out.sum() == pytest.approx(16.0)


def test_every_kernel_is_3x3_and_blurs_sum_to_one():
    assert set(KERNELS) >= {"identity", "edge detection", "sharpen", "box blur", "Gaussian blur"}
    for name in KERNELS:
        assert kernel(name).shape == (3, 3)
    assert kernel("box blur").sum() == pytest.approx(1.0)
    assert kernel("Gaussian blur").sum() == pytest.approx(1.0)


def test_writes_the_kernels_side_by_side(synthetic_dataset, tmp_path, open_png):
    image = synthetic_dataset / "test" / "cat" / "cat.24.jpg"
    path = write_kernel_effects(image, tmp_path / "kernels.png")
    assert path == tmp_path / "kernels.png"
    open_png(path, (1000, 800))
    with pytest.raises(PipelineError, match="no such file"):
        write_kernel_effects(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_text("nope")
    with pytest.raises(PipelineError, match="not a readable image"):
        write_kernel_effects(tmp_path / "bad.jpg")
