"""A hand-edited manifest never makes training read outside its dataset: every class and file
name it lists is checked like any other name (one line naming the manifest and the entry),
and a listed file or folder that is a symbolic link is refused."""

from __future__ import annotations

import json
import os

import pytest

from pipeline.data.manifest import MANIFEST_NAME, file_sha256, require_prepared, verify_dataset
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.errors import PipelineError


@pytest.fixture
def prepared(tmp_path, kaggle_source):
    config = PrepareConfig(source=kaggle_source(per_class=5), data_root=tmp_path / "data",
                           name="small", train=3, validation=1, test=1)
    return prepare_dataset(config, progress=False).dataset_dir


def edit(dataset, change) -> None:
    path = dataset / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../../../outside.jpg", "..", ".", "sub/cat.0.jpg",
                                  "/etc/hostname", "", 7, "caf\udce9.jpg", "nul\0.jpg"])
def test_a_file_name_that_is_not_one_name_in_its_folder_is_refused(prepared, tmp_path, name):
    outside = tmp_path / "outside.jpg"  # what ../../../outside.jpg reaches from train/cat/
    outside.write_bytes((prepared / "train" / "cat" / "cat.0.jpg").read_bytes())

    def point_outside(manifest):
        entry = manifest["splits"]["train"]["cat"][0]
        stat = outside.stat()
        entry.update(name=name, sha256=file_sha256(outside), size=stat.st_size,
                     mtime_ns=stat.st_mtime_ns)

    edit(prepared, point_outside)
    for check in (require_prepared, verify_dataset):
        with pytest.raises(PipelineError) as error:
            check(prepared)
        message = str(error.value)
        assert str(prepared / MANIFEST_NAME) in message and "\n" not in message
        assert f"train/cat entry {name!r}" in message and "prepare it again" in message


@pytest.mark.parametrize("label", ["../escape", "a/b", ".."])
def test_a_class_name_that_is_not_one_folder_name_is_refused(prepared, label):
    def rename_class(manifest):
        manifest["classes"][0] = label
        for split in manifest["splits"].values():
            split[label] = split.pop("cat")
        for split in manifest["counts"].values():
            split[label] = split.pop("cat")

    edit(prepared, rename_class)
    with pytest.raises(PipelineError, match=rf"class {label!r}".replace(".", r"\.")):
        require_prepared(prepared)


def test_a_listed_file_or_class_folder_that_is_a_symbolic_link_is_refused(prepared, tmp_path):
    photo = prepared / "train" / "cat" / "cat.0.jpg"
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(photo.read_bytes())
    photo.unlink()
    os.symlink(outside, photo)  # same bytes: only the link itself gives it away
    with pytest.raises(PipelineError, match=r"train/cat/cat\.0\.jpg \(a symbolic link"):
        verify_dataset(prepared)

    photo.unlink()
    photo.write_bytes(outside.read_bytes())
    moved = tmp_path / "test-cats"
    (prepared / "test" / "cat").rename(moved)
    os.symlink(moved, prepared / "test" / "cat")
    with pytest.raises(PipelineError, match=r"test/cat: is a symbolic link"):
        require_prepared(prepared)
