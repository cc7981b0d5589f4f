"""write_synthetic_dataset: a small prepared dataset, real JPEGs, the same every time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import check_image
from pipeline.data.manifest import (
    MANIFEST_NAME,
    SPLITS,
    class_names,
    manifest_checksum,
    require_prepared,
    verify_dataset,
)
from pipeline.data.synth import SHAPES, available_memory, draw_sample, write_synthetic_dataset
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
    def checksums(manifest):
        return {(split, label, entry["name"]): entry["sha256"]
                for split in SPLITS for label, entries in manifest["splits"][split].items()
                for entry in entries}

    assert checksums(one) == checksums(two)
    assert manifest_checksum(one) == manifest_checksum(two)
    assert checksums(one) != checksums(three)


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
    with pytest.raises(PipelineError, match="set `force`"):
        write_synthetic_dataset(dest, sizes=(3, 1, 1))
    write_synthetic_dataset(dest, sizes=(3, 1, 1), force=True)
    assert require_prepared(dest)["counts"]["train"]["cat"] == 3
    assert len(list((dest / "train" / "cat").iterdir())) == 3


def test_foreign_folder_is_not_deleted_even_with_force(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("keep me")
    with pytest.raises(PipelineError, match="not deleting anything"):
        write_synthetic_dataset(tmp_path / "s", force=True)
    assert (tmp_path / "s" / "notes.txt").exists()


def test_force_keeps_a_file_someone_added_to_a_synthetic_dataset(tmp_path):
    dest = write_synthetic_dataset(tmp_path / "s", sizes=(2, 1, 1), image_size=32)
    (dest / "precious.txt").write_text("keep me")
    with pytest.raises(PipelineError, match=r"holds precious\.txt, which this package did not"):
        write_synthetic_dataset(dest, sizes=(3, 1, 1), image_size=32, force=True)
    assert (dest / "precious.txt").read_text() == "keep me"
    assert require_prepared(dest)["counts"]["train"]["cat"] == 2
    assert verify_dataset(dest).files == 8


def test_a_manifest_of_another_format_is_not_proof_of_ownership(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / MANIFEST_NAME).write_text(json.dumps({"format": 99, "classes": []}))
    (tmp_path / "s" / "precious.txt").write_text("keep me")
    with pytest.raises(PipelineError, match="not deleting anything even with `force`"):
        write_synthetic_dataset(tmp_path / "s", force=True)
    assert (tmp_path / "s" / "precious.txt").exists()


def test_a_data_root_that_is_a_file_is_one_clear_line(tmp_path):
    (tmp_path / "root").write_text("a file")
    with pytest.raises(PipelineError, match=r"`data_root` .*root is a file, not a folder"):
        write_synthetic_dataset(tmp_path / "root" / "synthetic", sizes=(1, 1, 1))


def test_an_image_size_too_large_for_memory_says_what_fits(tmp_path):
    side = int((available_memory() / 8) ** 0.5)  # 4x more memory than there is, at 32 B/px
    with pytest.raises(PipelineError, match=r"`image_size` \d+: .* at most \d+ px fits") as error:
        write_synthetic_dataset(tmp_path / "s", image_size=side, sizes=(1, 1, 1))
    fits = int(str(error.value).split("at most ")[1].split(" px")[0])
    assert 1000 < fits < side
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("cat",)}, "give 2 to"),
        ({"classes": ("cat", "Cat")}, "must differ"),
        ({"classes": ("cat", "../dog")}, "not a usable folder name"),
        ({"sizes": (0, 1, 1)}, "at least 1 training image"),
        ({"sizes": (1, 1)}, "three whole numbers"),
        ({"image_size": 8}, "`image_size` 8: must be at least 16 px"),
        ({"classes": ("cat",)}, "`classes`"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(PipelineError, match=message):
        write_synthetic_dataset(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()
