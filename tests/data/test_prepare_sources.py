"""Sources beyond one folder per class: already split (train/, val/, test/), or a flat folder
labelled by a CSV; and the names datasets get from them."""

from __future__ import annotations

import pytest

from pipeline.data.layouts import scan_source
from pipeline.data.manifest import read_manifest
from pipeline.data.naming import default_dataset_name
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.errors import PipelineError


def prepare(source, tmp_path, **options):
    options.setdefault("data_root", tmp_path / "data")
    return prepare_dataset(PrepareConfig(source=source, **options), progress=False)


def split_source(root, write_image, splits: dict[str, dict[str, int]]):
    for split, classes in splits.items():
        for label, count in classes.items():
            for i in range(count):
                write_image(root / split / label / f"{split}_{label}_{i}.jpg")
    return root


def listed(dataset, split, label) -> set[str]:
    return {p.name for p in (dataset / split / label).iterdir()}


@pytest.mark.parametrize("validation_folder", ["val", "validation", "valid"])
def test_a_pre_split_source_is_used_as_given(tmp_path, write_image, validation_folder):
    source = split_source(tmp_path / "export", write_image, {
        "train": {"cat": 5, "dog": 7}, validation_folder: {"cat": 2, "dog": 1},
        "test": {"cat": 1, "dog": 3}})
    (source / "README.roboflow.txt").write_text("exported")

    result = prepare(source, tmp_path)

    assert result.layout == "pre-split" and result.dataset_dir.name == "export"
    assert result.counts == {"train": {"cat": 5, "dog": 7}, "validation": {"cat": 2, "dog": 1},
                             "test": {"cat": 1, "dog": 3}}
    assert listed(result.dataset_dir, "validation", "cat") == {
        f"{validation_folder}_cat_0.jpg", f"{validation_folder}_cat_1.jpg"}
    assert read_manifest(result.dataset_dir)["selection"] == "given"
    assert "split: as the source's folders give it (train, validation, test)" in result.summary()


def test_with_train_and_test_only_validation_is_drawn_from_train(tmp_path, write_image):
    source = split_source(tmp_path / "kaggle", write_image, {
        "train": {"cat": 18, "dog": 9}, "test": {"cat": 2, "dog": 2}})

    result = prepare(source, tmp_path)

    # 0.1 of the 0.9 train and validation share: 2 of 18 cats, 1 of 9 dogs.
    assert result.counts["validation"] == {"cat": 2, "dog": 1}
    assert result.counts["train"] == {"cat": 16, "dog": 8}
    assert result.counts["test"] == {"cat": 2, "dog": 2}
    drawn = listed(result.dataset_dir, "validation", "cat")
    assert all(name.startswith("train_cat_") for name in drawn)
    assert not drawn & listed(result.dataset_dir, "train", "cat")
    again = prepare(source, tmp_path, name="again")
    assert listed(again.dataset_dir, "validation", "cat") == drawn  # seeded
    assert "validation 3 (drawn from train/)" in result.summary()
    assert "validation 11% of each class of train/ drawn at random" in result.summary()
    wider = prepare(source, tmp_path, name="wider", split="0.6,0.3,0.1")
    assert wider.counts["validation"] == {"cat": 6, "dog": 3}  # a third of train/


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        ({"train": {"cat": 3, "dog": 3}, "val": {"cat": 1}, "test": {"cat": 1, "dog": 1}},
         r"splits hold different classes: val/ lacks 'dog'; give every split"),
        ({"train": {"cat": 3, "dog": 3}, "test": {"cat": 1, "dog": 1, "owl": 1}},
         r"test/ has 'owl', which train/ lacks"),
        ({"train": {"cat": 3, "dog": 3}, "val": {"cat": 1, "dog": 1},
          "validation": {"cat": 1, "dog": 1}}, r"val/ and validation/ are both a validation"),
        ({"train": {"cat": 3}, "test": {"cat": 1}}, r"found 1 class \(cat\), need at least 2"),
    ],
)
def test_pre_split_sources_that_do_not_agree_are_one_line(tmp_path, write_image, splits,
                                                          message):
    source = split_source(tmp_path / "export", write_image, splits)
    with pytest.raises(PipelineError, match=message) as error:
        prepare(source, tmp_path)
    assert "\n" not in str(error.value) and not (tmp_path / "data").exists()


def test_a_split_folder_of_loose_photos_is_refused(tmp_path, write_image):
    source = split_source(tmp_path / "export", write_image, {"train": {"cat": 3, "dog": 3}})
    write_image(source / "test" / "1.jpg")  # unlabelled, as competitions ship their test set
    with pytest.raises(PipelineError, match=r"test/ holds photos directly \(1\.jpg \.\.\.\)"):
        scan_source(source)


def test_a_fully_split_source_refuses_a_split_of_its_own(tmp_path, write_image):
    source = split_source(tmp_path / "export", write_image, {
        "train": {"cat": 3, "dog": 3}, "val": {"cat": 1, "dog": 1}, "test": {"cat": 1, "dog": 1}})
    with pytest.raises(PipelineError, match="used as given; leave out `split`"):
        prepare(source, tmp_path, split="0.8,0.1,0.1")
    with pytest.raises(PipelineError, match="used as given"):
        prepare(source, tmp_path, train=2)


# -- labels from a CSV -------------------------------------------------------------------------


def flat_photos(root, write_image, count=4, labels=("cat", "dog")):
    rows = []
    for label in labels:
        for i in range(count):
            name = f"{i:04d}_{label[0]}.jpg"
            write_image(root / name)
            rows.append((name, label))
    return rows


@pytest.mark.parametrize(
    ("header", "name_of"),
    [("filename,label", lambda n: n), ("id,label", lambda n: n.rsplit(".", 1)[0]),
     ("image,class", lambda n: n), ("file,category", lambda n: n), (None, lambda n: n)],
)
def test_a_flat_folder_labelled_by_a_csv(tmp_path, write_image, header, name_of):
    source = tmp_path / "images"
    rows = flat_photos(source, write_image)
    write_image(source / "unlisted.jpg")
    labels = tmp_path / "labels.csv"
    lines = ([header] if header else []) + [f"{name_of(n)},{label}" for n, label in rows]
    labels.write_text("\n".join(lines) + "\n")

    result = prepare(source, tmp_path, labels=labels, split="0.5,0.25,0.25")

    assert result.layout == "csv-labels" and result.classes == ["cat", "dog"]
    assert result.counts["train"] == {"cat": 2, "dog": 2}
    assert ("unlisted.jpg", "not listed in labels.csv") in [
        (p.name, r) for p, r in result.skipped]
    assert f"labels: {labels}" in result.summary()


def test_named_columns_and_other_delimiters(tmp_path, write_image):
    source = tmp_path / "images"
    rows = flat_photos(source, write_image)
    labels = tmp_path / "train.csv"
    labels.write_text("breed;picture;weight\n" + "".join(
        f"{label.upper()};{name};3\n" for name, label in rows))
    result = prepare(source, tmp_path, labels=labels, labels_columns="picture,breed",
                     split="0.5,0.25,0.25")
    assert result.classes == ["cat", "dog"]  # labels lower-cased, as every layout's
    with pytest.raises(PipelineError, match=r"`labels_columns` 'file,breed': train\.csv has no "
                                            r"column 'file' \(its header: breed, picture"):
        prepare(source, tmp_path, labels=labels, labels_columns="file,breed", name="x")


def test_a_csv_in_a_flat_folder_is_found_without_asking(tmp_path, write_image):
    source = tmp_path / "images"
    rows = flat_photos(source, write_image, count=3)
    (source / "labels.csv").write_text("image_id,species\n" + "".join(
        f"{name},{label}\n" for name, label in rows))
    result = prepare(source, tmp_path)
    assert result.layout == "csv-labels" and result.labels == source / "labels.csv"
    assert result.counts["test"] == {"cat": 1, "dog": 1}
    assert result.dataset_dir.name == "images"


@pytest.mark.parametrize(
    ("extra_rows", "message"),
    [
        ("gone.jpg,cat\nalso_gone.jpg,dog\n",
         r"row 10: names 'gone\.jpg', which is not in `source` .* \(and 1 more rows\)"),
        ("0001_c.jpg,dog\n", r"row 10: labels '0001_c\.jpg' 'dog', but row 3 labels it 'cat'"),
        ("0000_d.jpg,Dog\n", r"row 10: label 'Dog' and row 6's 'dog' differ only in case"),
        ("0000_c.jpg,\n", r"row 10: has no label"),
        ("../outside.jpg,cat\n", r"row 10: names '\.\./outside\.jpg', not a file inside"),
        ("0000_c.jpg\n", r"row 10: has 1 cells, the columns need 2"),
    ],
)
def test_a_bad_csv_row_is_one_line_naming_it(tmp_path, write_image, extra_rows, message):
    source = tmp_path / "images"
    rows = flat_photos(source, write_image)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "".join(f"{n},{label}\n" for n, label in rows)
                      + extra_rows)
    with pytest.raises(PipelineError, match=message) as error:
        prepare(source, tmp_path, labels=labels)
    assert "\n" not in str(error.value) and "labels.csv row" in str(error.value)
    assert not (tmp_path / "data").exists()


def test_the_same_file_twice_with_the_same_label_is_fine(tmp_path, write_image):
    source = tmp_path / "images"
    rows = flat_photos(source, write_image, count=3)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "".join(f"{n},{label}\n" for n, label in rows * 2))
    assert prepare(source, tmp_path, labels=labels).counts["train"] == {"cat": 1, "dog": 1}


def test_a_csv_whose_columns_cannot_be_told_asks_for_them(tmp_path, write_image):
    source = tmp_path / "images"
    flat_photos(source, write_image)
    labels = tmp_path / "labels.csv"
    labels.write_text("a,b,c\nx,y,z\n")
    with pytest.raises(PipelineError, match=r"cannot tell which columns .* `labels_columns`"):
        prepare(source, tmp_path, labels=labels)
    with pytest.raises(PipelineError, match="file not found"):
        prepare(source, tmp_path, labels=tmp_path / "nope.csv")


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("oxford-flowers-17", "oxford-flowers-17"), ("My Photos (2024)", "My_Photos_2024_"),
     ("flowers/train", "flowers"), (".hidden-ish", "hidden-ish")],
)
def test_the_default_name_comes_from_the_source_folder(tmp_path, write_image, folder, expected):
    source = tmp_path / folder
    for label in ("a", "b"):
        write_image(source / label / "0.jpg")
    assert default_dataset_name(scan_source(source)) == expected


def test_kaggle_and_petimages_keep_the_books_name(tmp_path, write_image, kaggle_source):
    assert default_dataset_name(scan_source(kaggle_source(2))) == "cats_and_dogs_small"
    for label in ("Cat", "Dog"):
        write_image(tmp_path / "PetImages" / label / "0.jpg")
    assert default_dataset_name(scan_source(tmp_path / "PetImages")) == "cats_and_dogs_small"
