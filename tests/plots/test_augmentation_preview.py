"""The augmentation preview: odd images read like everywhere else, bad sizes as one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.augment import AugmentConfig
from pipeline.errors import PipelineError
from pipeline.plots.augmentation import plot_augmentations
from tests.odd_images import write_16bit_png, write_png_claiming


@pytest.fixture
def photo(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "cat.jpg")
    return tmp_path / "cat.jpg"


def test_an_existing_folder_gets_the_default_name(photo, tmp_path, open_png):
    out = tmp_path / "figures"
    out.mkdir()
    path = plot_augmentations(photo, out, AugmentConfig(), count=2, image_size=32)
    assert path == out / "augmentation-cat.png"
    open_png(path, (200, 200))


def test_a_16_bit_png_is_previewed_as_grey_levels_not_white(tmp_path, open_png):
    scan, _ = write_16bit_png(tmp_path / "scan.png", size=(64, 64))
    path = plot_augmentations(scan, tmp_path / "p.png", AugmentConfig(rotation=0, zoom=0),
                              count=2, image_size=32)
    pixels = open_png(path, (200, 200))
    assert (pixels < 100).all(axis=2).mean() > 0.05  # dark ramp pixels are there


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"image_size": 0}, "`image_size` 0: must be a whole number of pixels from 1 to"),
     ({"image_size": 100_000}, "`image_size` 100000"),
     ({"count": 0}, "`count` 0: must be a whole number from 1 to"),
     ({"config": AugmentConfig(zoom=2.0)}, "`zoom` 2.0: is a fraction of the image")],
)
def test_bad_settings_are_one_line_before_any_work(photo, tmp_path, kwargs, message):
    arguments = {"config": AugmentConfig(), "count": 2, "image_size": 32, **kwargs}
    with pytest.raises(PipelineError, match=message):
        plot_augmentations(photo, tmp_path / "p.png", **arguments)
    assert not (tmp_path / "p.png").exists()


def test_a_decompression_bomb_is_refused_naming_the_file(tmp_path):
    bomb = write_png_claiming(tmp_path / "bomb.png", 30_000, 30_000)
    with pytest.raises(PipelineError, match=r"bomb\.png: too large to decode safely"):
        plot_augmentations(bomb, tmp_path / "p.png", AugmentConfig(), count=2, image_size=32)
