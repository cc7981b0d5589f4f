"""scan_source / find_class_images: the three layouts, their order, and what they refuse."""

from __future__ import annotations

import pytest

from pipeline.data.layouts import find_class_images, scan_source
from pipeline.errors import PipelineError


def test_kaggle_flat_folder_gives_classes_from_prefix_in_id_order(tmp_path, write_image):
    for name in ["cat.10.jpg", "cat.9.jpg", "cat.0.jpg", "dog.2.JPG", "dog.1.jpeg"]:
        write_image(tmp_path / name)
    (tmp_path / "Thumbs.db").write_bytes(b"\0" * 10)
    write_image(tmp_path / ".hidden.jpg")
    write_image(tmp_path / "1.jpg")  # Kaggle's test1/ naming: no label

    scan = scan_source(tmp_path)

    assert scan.layout == "kaggle-flat"
    assert {label: [p.name for p in paths] for label, paths in scan.classes.items()} == {
        "cat": ["cat.0.jpg", "cat.9.jpg", "cat.10.jpg"],
        "dog": ["dog.1.jpeg", "dog.2.JPG"],
    }
    ignored = {path.name: reason for path, reason in scan.ignored}
    assert set(ignored) == {"Thumbs.db", ".hidden.jpg", "1.jpg"}
    assert "not an image" in ignored["Thumbs.db"]


def test_kaggle_prefixes_are_lower_cased(tmp_path, write_image):
    write_image(tmp_path / "Cat.0.jpg")
    write_image(tmp_path / "DOG.0.jpg")
    assert list(find_class_images(tmp_path)) == ["cat", "dog"]


def test_petimages_folders_become_lower_case_classes(tmp_path, write_image):
    for label in ("Cat", "Dog"):
        for i in (10, 2, 1):
            write_image(tmp_path / label / f"{i}.jpg")
    (tmp_path / "Cat" / "Thumbs.db").write_bytes(b"x")

    scan = scan_source(tmp_path)

    assert scan.layout == "petimages"
    assert [p.name for p in scan.classes["cat"]] == ["1.jpg", "2.jpg", "10.jpg"]
    assert list(scan.classes) == ["cat", "dog"]
    assert [(p.name, r) for p, r in scan.ignored] == [("Thumbs.db", "not an image file (.db)")]


def test_extracted_archive_wrapper_folder_is_looked_through(tmp_path, write_image):
    for label in ("Cat", "Dog"):
        write_image(tmp_path / "PetImages" / label / "0.jpg")
    (tmp_path / "readme[1].txt").write_text("licence")

    scan = scan_source(tmp_path)

    assert scan.layout == "petimages" and list(scan.classes) == ["cat", "dog"]
    assert [p.name for p, _ in scan.ignored] == ["readme[1].txt"]


def test_any_folder_with_one_sub_folder_per_class(tmp_path, write_image):
    for label in ("horse", "Bird", "fish"):
        for name in ("img10.png", "img2.jpg", "img1.bmp"):
            write_image(tmp_path / label / name, fmt="JPEG")
    (tmp_path / "__MACOSX" / "horse").mkdir(parents=True)  # what a macOS zip adds

    scan = scan_source(tmp_path)

    assert scan.layout == "class-folders"
    assert list(scan.classes) == ["bird", "fish", "horse"]
    assert [p.name for p in scan.classes["fish"]] == ["img1.bmp", "img2.jpg", "img10.png"]
    assert ("__MACOSX", "archive or file-system metadata") in [
        (p.name, r) for p, r in scan.ignored]


def test_missing_source_names_the_folder_and_the_option(tmp_path):
    with pytest.raises(PipelineError, match=r"`source` .*nowhere: folder not found; point"):
        scan_source(tmp_path / "nowhere")


def test_source_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "train.zip").write_bytes(b"PK")
    with pytest.raises(PipelineError, match="is a file, not a folder"):
        scan_source(tmp_path / "train.zip")


def test_empty_source_is_refused(tmp_path):
    with pytest.raises(PipelineError, match="folder is empty"):
        scan_source(tmp_path)


def test_single_class_is_refused(tmp_path, write_image):
    write_image(tmp_path / "cat.0.jpg")
    with pytest.raises(PipelineError, match=r"found 1 class \(cat\), need at least 2"):
        scan_source(tmp_path)


def test_folder_of_unlabelled_files_is_refused(tmp_path, write_image):
    write_image(tmp_path / "1.jpg")
    with pytest.raises(PipelineError, match=r"found 0 class \(none\)"):
        scan_source(tmp_path)


def test_folder_of_splits_points_at_train(tmp_path, write_image):
    write_image(tmp_path / "train" / "cat.0.jpg")
    write_image(tmp_path / "test1" / "1.jpg")
    with pytest.raises(PipelineError, match=r"use `source` .*train$"):
        scan_source(tmp_path)


def test_class_folders_differing_only_in_case_are_refused(tmp_path, write_image):
    write_image(tmp_path / "Cat" / "0.jpg")
    write_image(tmp_path / "cat" / "0.jpg")
    write_image(tmp_path / "dog" / "0.jpg")
    with pytest.raises(PipelineError, match="differ only in case"):
        scan_source(tmp_path)
