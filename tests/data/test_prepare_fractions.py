"""Splits by fractions: stratified per class, seeded, every photo used, uneven classes kept;
the layout's default (the book's counts for Kaggle's cats and dogs, 0.8/0.1/0.1 otherwise)."""

from __future__ import annotations

import pytest

from pipeline.data.manifest import read_manifest, verify_dataset
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.data.splits import allocate, parse_fractions, split_rule
from pipeline.errors import PipelineError


def class_folders(root, write_image, sizes: dict[str, int], fmt: str = "JPEG"):
    extension = {"JPEG": "jpg", "PNG": "png"}[fmt]
    for label, count in sizes.items():
        for i in range(count):
            write_image(root / label / f"{label}_{i}.{extension}", fmt=fmt)
    return root


def prepare(source, tmp_path, **options):
    options.setdefault("data_root", tmp_path / "data")
    return prepare_dataset(PrepareConfig(source=source, **options), progress=False)


def names(dataset, split, label) -> set[str]:
    return {p.name for p in (dataset / split / label).iterdir()}


def test_uneven_classes_are_split_whole_by_the_default_fractions(tmp_path, write_image):
    source = class_folders(tmp_path / "flowers", write_image,
                           {"daisy": 23, "rose": 10, "tulip": 3})

    result = prepare(source, tmp_path)

    assert result.dataset_dir == tmp_path / "data" / "flowers"  # named after its folder
    # daisy: 18.4/2.3/2.3 -> 18/2/2, and the photo left over to the largest remainder (train)
    assert result.counts == {"train": {"daisy": 19, "rose": 8, "tulip": 1},
                             "validation": {"daisy": 2, "rose": 1, "tulip": 1},
                             "test": {"daisy": 2, "rose": 1, "tulip": 1}}
    for label, count in (("daisy", 23), ("rose", 10), ("tulip", 3)):
        used = set().union(*(names(result.dataset_dir, s, label)
                             for s in ("train", "validation", "test")))
        assert used == {f"{label}_{i}.jpg" for i in range(count)}  # every photo, once
    manifest = read_manifest(result.dataset_dir)
    assert manifest["selection"] == "fractions" and manifest["requested"] is None
    assert manifest["fractions"] == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert manifest["seed"] == 1337
    summary = result.summary()
    assert "split: 0.8/0.1/0.1 of each class" in summary
    assert "(the default for the class-folders layout)" in summary
    assert "name: flowers (the source folder's name)" in summary
    assert "train 28: daisy 19, rose 8, tulip 1" in summary
    verify_dataset(result.dataset_dir, full=True)


def test_the_draw_is_seeded_per_class_and_random(tmp_path, write_image):
    source = class_folders(tmp_path / "photos", write_image, {"a": 30, "b": 12})

    def draw(name, **options):
        result = prepare(source, tmp_path, name=name, split="0.5,0.25,0.25", **options)
        return {split: names(result.dataset_dir, split, "a")
                for split in ("train", "validation", "test")}

    first, again, other = draw("one"), draw("two"), draw("three", seed=7)
    assert first == again and first != other
    in_order = {f"a_{i}.jpg" for i in range(15)}
    assert first["train"] != in_order  # drawn at random, not the first files
    assert [len(first[s]) for s in ("train", "validation", "test")] == [15, 8, 7]


def test_fractions_with_a_zero_split(tmp_path, write_image):
    source = class_folders(tmp_path / "photos", write_image, {"a": 5, "b": 2})
    result = prepare(source, tmp_path, split=(0.9, 0.1, 0.0))
    assert result.counts["test"] == {"a": 0, "b": 0}
    assert result.counts["validation"] == {"a": 1, "b": 1}


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ("0.8,0.1", "give three fractions"),
        ("0.8,0.1,x", "give three fractions"),
        ("0.8,0.3,0.1", "add up to 1.2, not 1"),
        ("80,10,10", "add up to 100, not 1"),
        ("0,0.5,0.5", "train's above 0"),
        ("1.2,-0.1,-0.1", "0 or more"),
        ("nan,0.5,0.5", "give three fractions"),
    ],
)
def test_bad_fractions_are_one_line_and_nothing_is_written(tmp_path, write_image, split,
                                                           message):
    source = class_folders(tmp_path / "photos", write_image, {"a": 4, "b": 4})
    with pytest.raises(PipelineError, match=f"`split` {split}: .*{message}") as error:
        prepare(source, tmp_path, split=split)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "data").exists()


def test_a_class_too_small_to_split_is_named(tmp_path, write_image):
    source = class_folders(tmp_path / "photos", write_image, {"big": 10, "tiny": 2})
    with pytest.raises(PipelineError) as error:
        prepare(source, tmp_path)
    message = str(error.value)
    assert "class 'tiny' has 2 usable photos, too few to split" in message
    assert "need at least 3" in message and "\n" not in message
    assert not (tmp_path / "data").exists()


def test_bad_photos_do_not_count_towards_a_class_large_enough(tmp_path, write_image):
    source = class_folders(tmp_path / "photos", write_image, {"big": 10, "small": 3})
    (source / "small" / "small_0.jpg").write_bytes(b"not a photo")
    with pytest.raises(PipelineError, match=r"'small' has 2 usable photos \(1 unreadable"):
        prepare(source, tmp_path)


def test_fractions_and_counts_together_are_refused(tmp_path, write_image):
    source = class_folders(tmp_path / "photos", write_image, {"a": 4, "b": 4})
    with pytest.raises(PipelineError, match="give fractions or whole counts per class, not both"):
        prepare(source, tmp_path, split="0.8,0.1,0.1", train=2)


def test_whole_counts_still_work_on_any_layout(tmp_path, write_image):
    source = class_folders(tmp_path / "photos", write_image, {"a": 9, "b": 12})
    result = prepare(source, tmp_path, train=5, validation=2, test=2)
    assert result.counts["train"] == {"a": 5, "b": 5}
    assert "5/2/2 photos per class, in file order" in result.summary()
    assert "default" not in result.summary().split("split:")[1].splitlines()[0]


def test_kaggle_cats_and_dogs_keep_the_books_counts_and_name(tmp_path, kaggle_source):
    source = kaggle_source(per_class=12)
    with pytest.raises(PipelineError) as error:  # 12 photos: the book's 2,000 do not fit
        prepare(source, tmp_path)
    assert "`train` 1000, `validation` 500 and `test` 500 need 2000" in str(error.value)
    assert "`split`" in str(error.value)  # and the way out: fractions
    result = prepare(source, tmp_path, split="0.5,0.25,0.25")
    assert result.dataset_dir.name == "cats_and_dogs_small"
    assert result.counts["train"] == {"cat": 6, "dog": 6}


def test_the_default_rule_per_layout():
    classic = split_rule(None, None, False, "kaggle-flat")
    assert classic.counts == {"train": 1000, "validation": 500, "test": 500} and classic.default
    assert split_rule(None, None, False, "petimages").counts == classic.counts
    assert split_rule(None, None, False, "class-folders").fractions == {
        "train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.mark.parametrize("count", [3, 4, 7, 10, 11, 19, 80, 633, 898])
def test_allocation_uses_every_photo_with_one_at_least_per_split(count):
    sizes = allocate(count, parse_fractions("0.8,0.1,0.1"))
    assert sum(sizes.values()) == count
    assert min(sizes.values()) >= 1
    assert abs(sizes["validation"] - count * 0.1) < 1 or count < 10


def test_prepare_command_takes_split_and_names_the_dataset(tmp_path, write_image, monkeypatch):
    from click.testing import CliRunner

    import cli

    source = class_folders(tmp_path / "my flowers", write_image, {"a": 6, "b": 4})
    monkeypatch.chdir(tmp_path)  # the default data root, data/, is relative
    result = CliRunner().invoke(cli.main, ["data", "prepare", "--source", str(source),
                                           "--split", "0.5,0.25,0.25"])
    assert result.exit_code == 0, result.output
    assert "prepared data/my_flowers (class-folders layout): 2 classes, 10 photos" in result.stdout
    assert "split: 0.5/0.25/0.25 of each class" in result.stdout
    bad = CliRunner().invoke(cli.main, ["data", "prepare", "--source", str(source), "--name",
                                        "other", "--split", "0.5,0.5", "--train", "1"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: --split 0.5,0.5: give three fractions")
    assert not (tmp_path / "data" / "other").exists()
