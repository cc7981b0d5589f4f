"""prepare_dataset: the classic split, bad files, refusals, a manifest that proves completion."""

from __future__ import annotations

import json
import os
import stat

import pytest
from PIL import Image

import pipeline.data.prepare as prepare_module
from pipeline.data.manifest import (
    MANIFEST_NAME,
    class_names,
    manifest_checksum,
    read_manifest,
    require_prepared,
    verify_dataset,
)
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.errors import PipelineError


def config_for(source, tmp_path, **overrides) -> PrepareConfig:
    settings = dict(
        source=source, data_root=tmp_path / "data", name="small", train=4, validation=3, test=3
    )
    settings.update(overrides)
    return PrepareConfig(**settings)


def split_names(dataset_dir, split, label) -> list[str]:
    return sorted(
        (p.name for p in (dataset_dir / split / label).iterdir()),
        key=lambda name: int(name.split(".")[1]),
    )


def test_kaggle_folder_gives_the_classic_split_by_id(tmp_path, kaggle_source):
    source = kaggle_source(per_class=12)

    result = prepare_dataset(config_for(source, tmp_path), progress=False)

    dataset = tmp_path / "data" / "small"
    assert result.dataset_dir == dataset and result.layout == "kaggle-flat"
    for label in ("cat", "dog"):
        assert split_names(dataset, "train", label) == [f"{label}.{i}.jpg" for i in range(4)]
        assert split_names(dataset, "validation", label) == [f"{label}.{i}.jpg" for i in (4, 5, 6)]
        assert split_names(dataset, "test", label) == [f"{label}.{i}.jpg" for i in (7, 8, 9)]
    assert result.counts == {
        "train": {"cat": 4, "dog": 4},
        "validation": {"cat": 3, "dog": 3},
        "test": {"cat": 3, "dog": 3},
    }
    assert result.checked == 20  # only what the split needs: ids 10 and 11 were never decoded
    assert result.skipped == []


def test_manifest_describes_every_file(tmp_path, kaggle_source):
    source = kaggle_source(per_class=10)
    result = prepare_dataset(config_for(source, tmp_path), progress=False)

    manifest = require_prepared(result.dataset_dir)

    assert result.manifest_path == result.dataset_dir / MANIFEST_NAME
    assert class_names(manifest) == ["cat", "dog"]
    assert manifest["layout"] == "kaggle-flat" and manifest["selection"] == "first"
    assert manifest["source"] == str(source.resolve())
    assert manifest["requested"] == {"train": 4, "validation": 3, "test": 3}
    first = manifest["splits"]["train"]["cat"][0]
    written = (result.dataset_dir / "train" / "cat" / "cat.0.jpg").stat()
    assert first == {
        "name": "cat.0.jpg",
        "sha256": prepare_module.file_sha256(source / "cat.0.jpg"),
        "size": (source / "cat.0.jpg").stat().st_size,
        "mtime_ns": written.st_mtime_ns,
        "source": "cat.0.jpg",
        "converted": False,
        "made": first["made"],
    }
    assert first["made"] in ("copy", "reflink") and manifest["link"] is False
    assert manifest["counts"]["test"] == {"cat": 3, "dog": 3}
    assert "summary" not in manifest and "cat 4, dog 4" in result.summary()


def test_photos_are_copied_so_editing_the_dataset_never_changes_them(
    tmp_path, kaggle_source, digest_tree
):
    source = kaggle_source(per_class=10)
    before = digest_tree(source)

    result = prepare_dataset(config_for(source, tmp_path), progress=False)

    out = result.dataset_dir / "train" / "cat" / "cat.0.jpg"
    assert out.read_bytes() == (source / "cat.0.jpg").read_bytes()
    assert not os.path.samefile(out, source / "cat.0.jpg") and out.stat().st_nlink == 1
    os.chmod(out, 0o600)
    out.write_bytes(b"edited in the dataset")
    assert digest_tree(source) == before
    assert (result.linked, result.copied + result.reflinked, result.converted) == (0, 20, 0)
    assert "20 copied" in result.summary() or "reflinked" in result.summary()


def test_hard_links_only_when_asked_and_recorded(tmp_path, kaggle_source):
    source = kaggle_source(per_class=10)
    result = prepare_dataset(config_for(source, tmp_path, link=True), progress=False)
    out = result.dataset_dir / "train" / "cat" / "cat.0.jpg"
    assert os.path.samefile(out, source / "cat.0.jpg") and out.stat().st_nlink == 2
    assert (result.linked, result.copied) == (20, 0)
    manifest = read_manifest(result.dataset_dir)
    assert manifest["link"] is True and manifest["splits"]["test"]["dog"][0]["made"] == "link"


def test_link_across_file_systems_falls_back_to_copy(tmp_path, kaggle_source, small_fs):
    source = kaggle_source(per_class=10)  # on tmp_path's file system; the dataset on a tmpfs
    data_root = small_fs("1m")
    result = prepare_dataset(config_for(source, tmp_path, data_root=data_root, link=True),
                             progress=False)
    assert (result.linked, result.copied) == (0, 20)
    assert read_manifest(result.dataset_dir)["splits"]["train"]["cat"][0]["made"] == "copy"
    assert verify_dataset(result.dataset_dir).files == 20


def test_written_files_follow_the_umask(tmp_path, kaggle_source):
    old = os.umask(0o027)
    try:
        result = prepare_dataset(config_for(kaggle_source(per_class=10), tmp_path), False)
    finally:
        os.umask(old)
    for path in (result.manifest_path, result.dataset_dir / "test" / "dog" / "dog.9.jpg"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_bad_photos_are_skipped_listed_and_replaced_by_the_next_ids(
    tmp_path, kaggle_source, write_image
):
    source = kaggle_source(per_class=13)
    (source / "cat.2.jpg").write_bytes(b"")  # zero bytes
    data = (source / "cat.5.jpg").read_bytes()
    (source / "cat.5.jpg").write_bytes(data[: len(data) // 2])  # truncated
    write_image(source / "cat.8.jpg", size=(10, 10))  # a thumbnail

    result = prepare_dataset(config_for(source, tmp_path), progress=False)

    dataset = result.dataset_dir
    assert split_names(dataset, "train", "cat") == [
        "cat.0.jpg",
        "cat.1.jpg",
        "cat.3.jpg",
        "cat.4.jpg",
    ]
    assert split_names(dataset, "validation", "cat") == ["cat.6.jpg", "cat.7.jpg", "cat.9.jpg"]
    assert split_names(dataset, "test", "cat") == ["cat.10.jpg", "cat.11.jpg", "cat.12.jpg"]
    assert split_names(dataset, "test", "dog") == ["dog.7.jpg", "dog.8.jpg", "dog.9.jpg"]
    reasons = {path.name: reason for path, reason in result.skipped}
    assert set(reasons) == {"cat.2.jpg", "cat.5.jpg", "cat.8.jpg"}
    assert "empty" in reasons["cat.2.jpg"] and "too small" in reasons["cat.8.jpg"]
    listed = {entry["path"] for entry in read_manifest(dataset)["skipped"]}
    assert listed == {"cat.2.jpg", "cat.5.jpg", "cat.8.jpg"}
    assert "skipped 3 files" in result.summary()


def test_photos_are_kept_as_faithfully_as_their_format_allows(tmp_path, write_image):
    source = tmp_path / "photos"
    for label in ("cat", "dog"):
        write_image(source / label / "a_grey.jpg", mode="L")
        write_image(source / label / "b_cmyk.jpg", mode="CMYK")
        write_image(source / label / "c_png_named.jpg", fmt="PNG")
        write_image(source / label / "d_alpha.png", mode="RGBA", fmt="PNG")

    result = prepare_dataset(
        config_for(source, tmp_path, train=2, validation=1, test=1), progress=False
    )

    cats = sorted(
        p.relative_to(result.dataset_dir).as_posix() for p in result.dataset_dir.rglob("cat/*")
    )
    assert cats == [
        "test/cat/d_alpha.png",  # transparency composited: a lossless PNG, not a JPEG
        "train/cat/a_grey.jpg",  # TensorFlow reads grey JPEGs as they are
        "train/cat/b_cmyk.png",  # CMYK made RGB, losslessly
        "validation/cat/c_png_named.png",  # the PNG's own bytes, under its right name
    ]
    assert (source / "cat" / "c_png_named.jpg").read_bytes() == (
        result.dataset_dir / "validation" / "cat" / "c_png_named.png").read_bytes()
    for path in result.dataset_dir.rglob("*.png"):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode in ("RGB", "L")
    assert (result.copied + result.reflinked, result.converted) == (4, 4)
    entries = read_manifest(result.dataset_dir)["splits"]["test"]["cat"]
    assert entries[0]["converted"] is True and entries[0]["source"] == "cat/d_alpha.png"


def test_converted_names_that_collide_are_made_unique(tmp_path, write_image):
    source = tmp_path / "photos"
    for label in ("a", "b"):
        write_image(source / label / "x.png", fmt="PNG")
        write_image(source / label / "x.webp", fmt="WEBP")  # becomes a PNG: x.png again
    result = prepare_dataset(
        config_for(source, tmp_path, train=2, validation=0, test=0), progress=False
    )
    assert sorted(p.name for p in (result.dataset_dir / "train" / "a").iterdir()) == [
        "x-2.png",
        "x.png",
    ]


def test_three_class_folder_layout(tmp_path, write_image):
    source = tmp_path / "animals"
    for label in ("horse", "bird", "fish"):
        for i in range(5):
            write_image(source / label / f"{label}_{i}.jpg")
    result = prepare_dataset(
        config_for(source, tmp_path, train=3, validation=1, test=1), progress=False
    )
    assert result.layout == "class-folders" and result.classes == ["bird", "fish", "horse"]
    assert result.counts["train"] == {"bird": 3, "fish": 3, "horse": 3}
    assert sorted(p.name for p in (result.dataset_dir / "test" / "fish").iterdir()) == [
        "fish_4.jpg"
    ]


def test_petimages_layout(tmp_path, write_image):
    source = tmp_path / "PetImages"
    for label in ("Cat", "Dog"):
        for i in range(6):
            write_image(source / label / f"{i}.jpg")
    result = prepare_dataset(
        config_for(source, tmp_path, train=2, validation=2, test=2), progress=False
    )
    assert result.layout == "petimages" and result.classes == ["cat", "dog"]
    assert sorted(p.name for p in (result.dataset_dir / "validation" / "dog").iterdir()) == [
        "2.jpg",
        "3.jpg",
    ]


def test_too_few_images_is_refused_before_anything_is_written(tmp_path, kaggle_source):
    source = kaggle_source(per_class=8)
    with pytest.raises(PipelineError) as error:
        prepare_dataset(config_for(source, tmp_path), progress=False)
    message = str(error.value)
    assert "class 'cat' has 8 usable images" in message and "need 10" in message
    assert "smaller `train`, `validation` or `test`" in message and "\n" not in message
    assert not (tmp_path / "data").exists()


def test_too_few_good_images_counts_the_bad_ones(tmp_path, kaggle_source):
    source = kaggle_source(per_class=10)
    (source / "dog.3.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(PipelineError, match=r"class 'dog' has 9 usable images \(1 unreadable"):
        prepare_dataset(config_for(source, tmp_path), progress=False)


def test_shuffle_is_reproducible_and_differs_from_the_id_order(tmp_path, kaggle_source):
    source = kaggle_source(per_class=30)

    def train_cats(name, **overrides):
        result = prepare_dataset(config_for(source, tmp_path, name=name, **overrides), False)
        return sorted(p.name for p in (result.dataset_dir / "train" / "cat").iterdir())

    first = train_cats("first")
    again = train_cats("shuffled", shuffle=True, seed=7)
    same = train_cats("shuffled_again", shuffle=True, seed=7)
    other = train_cats("other_seed", shuffle=True, seed=8)

    assert again == same
    assert again != first and again != other
    manifest = read_manifest(tmp_path / "data" / "shuffled")
    assert manifest["selection"] == "shuffle" and manifest["seed"] == 7


def test_existing_dataset_is_refused_without_force_and_replaced_with_it(tmp_path, kaggle_source):
    source = kaggle_source(per_class=12)
    prepare_dataset(config_for(source, tmp_path), progress=False)

    with pytest.raises(PipelineError, match="set `force` to replace it or choose another `name`"):
        prepare_dataset(config_for(source, tmp_path, train=2), progress=False)

    result = prepare_dataset(config_for(source, tmp_path, train=2, force=True), progress=False)
    assert result.replaced
    assert split_names(result.dataset_dir, "train", "dog") == ["dog.0.jpg", "dog.1.jpg"]
    assert split_names(result.dataset_dir, "test", "dog") == ["dog.5.jpg", "dog.6.jpg", "dog.7.jpg"]


def test_force_keeps_the_old_dataset_when_the_new_one_cannot_be_made(tmp_path, kaggle_source):
    source = kaggle_source(per_class=10)
    first = prepare_dataset(config_for(source, tmp_path), progress=False)
    with pytest.raises(PipelineError, match="need 20"):
        prepare_dataset(config_for(source, tmp_path, train=14, force=True), progress=False)
    assert require_prepared(first.dataset_dir)["requested"]["train"] == 4


def test_force_never_deletes_a_folder_that_is_not_a_dataset(tmp_path, kaggle_source):
    source = kaggle_source(per_class=10)
    foreign = tmp_path / "data" / "small"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("years of work")

    with pytest.raises(PipelineError, match="not deleting anything even with `force`"):
        prepare_dataset(config_for(source, tmp_path, force=True), progress=False)
    assert (foreign / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize(
    "manifest",
    [{"format": 1, "note": "someone else's manifest"}, {"classes": [], "splits": {}, "counts": {}}],
)
def test_force_never_deletes_a_folder_with_someone_elses_manifest(
    tmp_path, kaggle_source, manifest
):
    foreign = tmp_path / "data" / "small"
    foreign.mkdir(parents=True)
    (foreign / MANIFEST_NAME).write_text(json.dumps(manifest))
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(PipelineError, match="not deleting anything even with `force`"):
        prepare_dataset(config_for(kaggle_source(10), tmp_path, force=True), progress=False)
    assert (foreign / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("extra", "named"),
    [("precious.txt", "precious.txt"), ("train/notes.txt", "train/notes.txt"),
     ("train/cat/mine.jpg", "train/cat/mine.jpg"), ("test/horse/h.jpg", "test/horse")],
)
def test_force_replaces_our_dataset_only_when_it_holds_nothing_else(
    tmp_path, kaggle_source, extra, named
):
    source = kaggle_source(per_class=10)
    first = prepare_dataset(config_for(source, tmp_path), progress=False)
    (first.dataset_dir / extra).parent.mkdir(parents=True, exist_ok=True)
    (first.dataset_dir / extra).write_text("not written by prepare")

    with pytest.raises(PipelineError, match=rf"holds {named}, which this package did not write"):
        prepare_dataset(config_for(source, tmp_path, force=True, train=3), progress=False)
    assert (first.dataset_dir / extra).read_text() == "not written by prepare"
    assert read_manifest(first.dataset_dir)["requested"]["train"] == 4

    (first.dataset_dir / extra).unlink()
    if extra.startswith("test/horse"):
        (first.dataset_dir / "test" / "horse").rmdir()
    again = prepare_dataset(config_for(source, tmp_path, force=True, train=3), progress=False)
    assert again.replaced and read_manifest(again.dataset_dir)["requested"]["train"] == 3
    assert sorted(p.name for p in tmp_path.joinpath("data").iterdir()) == ["small"]


def test_a_full_disk_is_one_line_and_leaves_nothing_partial(tmp_path, kaggle_source, small_fs):
    source = kaggle_source(per_class=60)
    data_root = small_fs("160k")
    old = prepare_dataset(
        config_for(source, tmp_path, data_root=data_root, train=2, validation=1, test=1), False
    )
    old_files = sorted(p.relative_to(data_root) for p in data_root.rglob("*"))

    with pytest.raises(PipelineError, match=r"the disk is full .*free space or choose") as error:
        prepare_dataset(
            config_for(source, tmp_path, data_root=data_root, train=40, force=True), False
        )
    assert "\n" not in str(error.value)
    assert sorted(p.relative_to(data_root) for p in data_root.rglob("*")) == old_files
    assert verify_dataset(old.dataset_dir, full=True).files == 8


def test_a_data_root_that_is_a_file_or_read_only_is_refused_before_any_work(
    tmp_path, kaggle_source, small_fs
):
    source = kaggle_source(per_class=10)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(PipelineError, match=r"`data_root` .*file is a file, not a folder"):
        prepare_dataset(config_for(source, tmp_path, data_root=tmp_path / "file"), False)
    read_only = small_fs("64k", read_only=True)
    with pytest.raises(PipelineError, match=r"`data_root` .* is read-only"):
        prepare_dataset(config_for(source, tmp_path, data_root=read_only / "data"), False)


def test_empty_destination_folder_is_simply_used(tmp_path, kaggle_source):
    (tmp_path / "data" / "small").mkdir(parents=True)
    result = prepare_dataset(config_for(kaggle_source(per_class=10), tmp_path), progress=False)
    assert not result.replaced and result.manifest_path.exists()


def test_destination_inside_or_around_the_source_is_refused(tmp_path, kaggle_source):
    source = kaggle_source(per_class=10)
    with pytest.raises(PipelineError, match="would be written inside it"):
        prepare_dataset(config_for(source, tmp_path, data_root=source), progress=False)
    with pytest.raises(PipelineError, match="lies inside the dataset folder"):
        prepare_dataset(
            config_for(source, tmp_path, data_root=tmp_path, name="kaggle", force=True),
            progress=False,
        )
    assert len(list(source.iterdir())) == 20


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train": 0}, "`train` 0"),
        ({"test": -1}, "`test` -1"),
        ({"name": "../escape"}, "`name` '../escape'"),
        ({"name": "/etc"}, "`name` '/etc'"),
        ({"name": ".hidden"}, "`name` '.hidden'"),
        ({"name": ""}, "`name` ''"),
    ],
)
def test_bad_options_are_refused(tmp_path, kaggle_source, overrides, message):
    with pytest.raises(PipelineError, match=message.replace(".", r"\.")):
        prepare_dataset(config_for(kaggle_source(4), tmp_path, **overrides), progress=False)


def test_an_unfinished_dataset_is_detected_and_never_replaced(tmp_path, kaggle_source):
    # What a run of an older version left when killed: split folders, no manifest. Nothing
    # proves who wrote it, so even `force` refuses it; require_prepared says what to do.
    source = kaggle_source(per_class=10)
    dataset = tmp_path / "data" / "small"
    (dataset / "train" / "cat").mkdir(parents=True)
    (dataset / "train" / "cat" / "cat.0.jpg").write_bytes((source / "cat.0.jpg").read_bytes())
    with pytest.raises(PipelineError, match=r"did not finish; prepare it again .* `force`"):
        require_prepared(dataset)
    with pytest.raises(PipelineError, match=f"has no {MANIFEST_NAME} of a prepared dataset"):
        prepare_dataset(config_for(source, tmp_path, force=True), progress=False)
    assert (dataset / "train" / "cat" / "cat.0.jpg").exists()


def test_require_prepared_says_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match=r"no prepared dataset here; prepare it first"):
        require_prepared(tmp_path / "missing")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MANIFEST_NAME).write_text("{ half a manifest")
    with pytest.raises(PipelineError, match=r"unreadable manifest .* `force`"):
        require_prepared(broken)

    (broken / MANIFEST_NAME).write_text(json.dumps({"format": 1, "hello": "world"}))
    with pytest.raises(PipelineError, match="not a dataset manifest"):
        require_prepared(broken)


def test_checksum_ignores_creation_time_but_not_content(tmp_path, kaggle_source):
    source = kaggle_source(per_class=11)
    one = read_manifest(prepare_dataset(config_for(source, tmp_path, name="a"), False).dataset_dir)
    two = read_manifest(prepare_dataset(config_for(source, tmp_path, name="b"), False).dataset_dir)
    other = read_manifest(
        prepare_dataset(config_for(source, tmp_path, name="c", test=4), False).dataset_dir
    )
    two["created"] = "2000-01-01T00:00:00+00:00"

    assert manifest_checksum(one) == manifest_checksum(two)
    assert manifest_checksum(one) != manifest_checksum(other)
    assert len(manifest_checksum(one)) == 64
