"""Every visualisation reads images through the one loader and writes where it was told.

16-bit PNGs look as they do in ``data prepare`` (not white), a decompression bomb is one line
naming the file (not a crash), an output folder that exists is written into, and an output
below a plain file is refused before any model is loaded.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.visualize.activations import write_activations
from pipeline.visualize.filters import write_filter_patterns
from pipeline.visualize.gradcam_plot import write_gradcam
from pipeline.visualize.kernels import load_photo, write_kernel_effects
from tests.odd_images import write_16bit_png, write_png_claiming


def test_kernels_read_a_16_bit_png_as_its_grey_levels(tmp_path):
    path, expected = write_16bit_png(tmp_path / "scan.png", size=(64, 32))
    photo = load_photo(path, side=64)
    np.testing.assert_array_equal(photo[..., 1], expected)
    assert photo.mean() < 160  # Pillow's own convert would make it 255 everywhere


def test_kernels_refuse_a_bomb_and_write_into_a_given_folder(tmp_path, write_image_file):
    bomb = write_png_claiming(tmp_path / "bomb.png", 30_000, 30_000)
    with pytest.raises(PipelineError, match=r"bomb\.png: too large to decode safely"):
        write_kernel_effects(bomb, tmp_path)
    photo = write_image_file(tmp_path / "in" / "cat.png")
    written = write_kernel_effects(photo, tmp_path, size=32)
    assert written == tmp_path / "kernels-cat.png" and written.stat().st_size > 1000
    with pytest.raises(PipelineError, match="`size` 4: must be at least 8"):
        write_kernel_effects(photo, tmp_path, size=4)


def test_activations_and_gradcam_refuse_a_bomb_in_one_line(tiny_run, tmp_path):
    bomb = write_png_claiming(tmp_path / "bomb.png", 10_000, 10_000)
    with pytest.raises(PipelineError, match=r"bomb\.png: too large to decode safely"):
        write_activations(tiny_run.path, bomb, out_dir=tmp_path / "act")
    with pytest.raises(PipelineError, match=r"bomb\.png: too large to decode safely"):
        write_gradcam(tiny_run.path, [bomb], out_dir=tmp_path / "cam")
    assert not (tmp_path / "act").exists() and not (tmp_path / "cam").exists()


def test_gradcam_of_a_16_bit_png_shows_the_image_not_white(tiny_run, tmp_path, open_png):
    path, _ = write_16bit_png(tmp_path / "scan.png", size=(64, 48))
    [written] = write_gradcam(tiny_run.path, [path], out_dir=tmp_path)
    assert written == tmp_path / "gradcam-scan.png"
    open_png(written, (600, 200))


def test_outputs_below_a_file_are_refused_before_the_model_is_loaded(tmp_path, synthetic_dataset):
    (tmp_path / "plain").write_text("a file")
    image = synthetic_dataset / "test" / "cat" / "cat.24.jpg"
    missing_run = tmp_path / "no_run"  # never opened: the output is refused first
    with pytest.raises(PipelineError, match=r"`out_dir` .*plain: is a file"):
        write_activations(missing_run, image, out_dir=tmp_path / "plain")
    with pytest.raises(PipelineError, match=r"`out_dir` .*plain: is a file"):
        write_gradcam(missing_run, [image], out_dir=tmp_path / "plain")
    with pytest.raises(PipelineError, match=r"`out` .*plain is a file, not a folder"):
        write_filter_patterns(missing_run, "conv1", out=tmp_path / "plain" / "f.png")
    with pytest.raises(PipelineError, match=r"`out` .*plain is a file, not a folder"):
        write_kernel_effects(image, tmp_path / "plain" / "k.png")


def test_filters_into_an_existing_folder_get_their_default_name(tiny_run, tmp_path):
    path = write_filter_patterns(tiny_run.path, "conv1", count=2, steps=1, out=tmp_path)
    assert path == tmp_path / "filters-conv1.png" and path.is_file()
