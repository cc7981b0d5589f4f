"""write_synthetic_dataset: a small prepared dataset, real JPEGs, the same every time."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import check_image
from pipeline.data.manifest import SPLITS, class_names, manifest_checksum, require_prepared
from pipeline.data.synth import SHAPES, draw_sample, write_synthetic_dataset
from pipeline.errors import PipelineError


def test_writes_the_prepared_layout_with_a_manifest(tmp_path):
    dest = write_synthetic_dataset(tmp_path / "synthetic", sizes=(6, 3, 2), image_size=32)

    manifest = require_prepared(dest)
    assert class_names(manifest) == ["cat", "dog"]
    assert manifest["source"] == "synthetic" and manifest["seed"] == 0
    assert manifest["counts"] == {
        "train": {"cat": 6, "dog": 6},
        "validation": {"cat": 3, "dog": 3},
        "test": {"cat": 2, "dog": 2},
    }
    for split in SPLITS:
        for label in ("cat", "dog"):
            listed = [entry["name"] for entry in manifest["splits"][split][label]]
            assert sorted(p.name for p in (dest / split / label).iterdir()) == sorted(listed)
    assert [e["name"] for e in manifest["splits"]["test"]["dog"]] == ["dog.9.jpg", "dog.10.jpg"]


def test_images_are_real_rgb_jpegs_that_need_no_conversion(tmp_path):
    dest = write_synthetic_dataset(tmp_path / "s", sizes=(3, 1, 1), image_size=40)
    for path in dest.rglob("*.jpg"):
        check = check_image(path)
        assert check.ok and not check.needs_conversion
        assert (check.format, check.mode, check.width, check.height) == ("JPEG", "RGB", 40, 40)


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path):
    one = require_prepared(write_synthetic_dataset(tmp_path / "a", sizes=(4, 2, 2), seed=3))
    two = require_prepared(write_synthetic_dataset(tmp_path / "b", sizes=(4, 2, 2), seed=3))
    three = require_prepared(write_synthetic_dataset(tmp_path / "c", sizes=(4, 2, 2), seed=4))
    assert one["splits"] == two["splits"]
    assert manifest_checksum(one) == manifest_checksum(two)
    assert one["splits"] != three["splits"]


def test_classes_differ_in_shape_not_in_a_constant_colour(tmp_path):
    dest = write_synthetic_dataset(tmp_path / "s", sizes=(20, 1, 1), image_size=48)

    def mean_colours(label):
        return np.array(
            [
                np.asarray(Image.open(p)).mean(axis=(0, 1))
                for p in (dest / "train" / label).iterdir()
            ]
        )

    cats, dogs = mean_colours("cat"), mean_colours("dog")
    assert cats.std(axis=0).min() > 5 and dogs.std(axis=0).min() > 5  # colours vary within a class
    assert abs(cats.mean() - dogs.mean()) < 30  # and no brightness gives the class away


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_draws_bright_pixels_on_the_background(shape):
    image = np.asarray(draw_sample(shape, 64, np.random.default_rng(0)))
    assert image.shape == (64, 64, 3)
    assert (image.min(axis=2) >= 150).sum() > 40  # some shape pixels are bright in all channels


def test_three_classes(tmp_path):
    dest = write_synthetic_dataset(
        tmp_path / "three", classes=("circle", "square", "stripe"), sizes=(2, 1, 1)
    )
    assert require_prepared(dest)["counts"]["train"] == {"circle": 2, "square": 2, "stripe": 2}


def test_existing_dataset_needs_force(tmp_path):
    dest = write_synthetic_dataset(tmp_path / "s", sizes=(2, 1, 1))
    with pytest.raises(PipelineError, match="pass --force"):
        write_synthetic_dataset(dest, sizes=(3, 1, 1))
    write_synthetic_dataset(dest, sizes=(3, 1, 1), force=True)
    assert require_prepared(dest)["counts"]["train"]["cat"] == 3
    assert len(list((dest / "train" / "cat").iterdir())) == 3


def test_foreign_folder_is_not_deleted_even_with_force(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("keep me")
    with pytest.raises(PipelineError, match="not deleting it"):
        write_synthetic_dataset(tmp_path / "s", force=True)
    assert (tmp_path / "s" / "notes.txt").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("cat",)}, "give 2 to"),
        ({"classes": ("cat", "Cat")}, "must differ"),
        ({"classes": ("cat", "../dog")}, "not a usable folder name"),
        ({"sizes": (0, 1, 1)}, "at least 1 training image"),
        ({"sizes": (1, 1)}, "three whole numbers"),
        ({"image_size": 8}, "at least 16 px"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(PipelineError, match=message):
        write_synthetic_dataset(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()
