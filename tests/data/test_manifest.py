"""verify_dataset: files on disk are the ones the manifest lists, or the changed ones are named."""

from __future__ import annotations

import json
import os

import pytest

from pipeline.data.manifest import (
    MANIFEST_NAME,
    build_manifest,
    file_entry,
    manifest_checksum,
    read_manifest,
    verify_dataset,
    write_manifest,
)
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.errors import PipelineError


@pytest.fixture
def prepared(tmp_path, kaggle_source):
    """A prepared dataset of 2 classes x (3 train, 1 validation, 1 test) copied photos."""
    config = PrepareConfig(source=kaggle_source(per_class=5), data_root=tmp_path / "data",
                           name="small", train=3, validation=1, test=1)
    return prepare_dataset(config, progress=False).dataset_dir


def test_an_untouched_dataset_passes_cheap_and_full_checks(prepared):
    cheap, full = verify_dataset(prepared), verify_dataset(prepared, full=True)
    assert (cheap.files, cheap.full, full.full) == (10, False, True)
    assert cheap.digest == full.digest and len(cheap.digest) == 64


def test_a_deleted_photo_is_named_with_what_to_do(prepared):
    (prepared / "train" / "dog" / "dog.1.jpg").unlink()
    with pytest.raises(PipelineError) as error:
        verify_dataset(prepared)
    message = str(error.value)
    assert "1 of 10 files differ" in message and "train/dog/dog.1.jpg (missing)" in message
    assert "prepare it again (`data prepare` with `force`)" in message and "\n" not in message


def test_a_replaced_photo_is_found_by_size_or_by_content(prepared, write_image):
    replaced = prepared / "validation" / "cat" / "cat.3.jpg"
    write_image(replaced, size=(60, 50))  # another photo, another size
    same_size = prepared / "test" / "dog" / "dog.4.jpg"
    data = bytearray(same_size.read_bytes())
    data[-3] ^= 0xFF  # one byte changed: same size, new modification time
    same_size.write_bytes(bytes(data))
    with pytest.raises(PipelineError, match=r"2 of 10 files differ") as error:
        verify_dataset(prepared)
    assert "validation/cat/cat.3.jpg (" in str(error.value) and "bytes, was" in str(error.value)
    assert "test/dog/dog.4.jpg (content changed)" in str(error.value)


def test_a_touched_but_unchanged_file_passes_and_changes_the_digest(prepared):
    before = verify_dataset(prepared).digest
    path = prepared / "train" / "cat" / "cat.0.jpg"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = verify_dataset(prepared)
    assert after.files == 10 and after.digest != before


def test_only_the_full_check_sees_an_edit_that_kept_size_and_time(prepared):
    path = prepared / "train" / "dog" / "dog.2.jpg"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a careful forger
    assert verify_dataset(prepared).files == 10
    with pytest.raises(PipelineError, match=r"train/dog/dog\.2\.jpg \(content changed\)"):
        verify_dataset(prepared, full=True)


def test_a_format_1_manifest_is_still_read_and_checked_by_checksum(prepared):
    manifest = read_manifest(prepared)
    manifest["format"] = 1
    manifest.pop("link")
    for per_class in manifest["splits"].values():
        for entries in per_class.values():
            for entry in entries:
                for key in ("size", "mtime_ns", "made"):
                    entry.pop(key)
    (prepared / MANIFEST_NAME).write_text(json.dumps(manifest))
    check = verify_dataset(prepared)
    assert check.full and check.files == 10
    path = prepared / "test" / "cat" / "cat.4.jpg"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PipelineError, match=r"test/cat/cat\.4\.jpg \(content changed\)"):
        verify_dataset(prepared)


def test_the_cache_key_ignores_times_and_how_files_were_made(prepared):
    manifest = read_manifest(prepared)
    other = json.loads(json.dumps(manifest))
    other["link"] = True
    other["splits"]["train"]["cat"][0].update(mtime_ns=1, made="link")
    assert manifest_checksum(other) == manifest_checksum(manifest)
    other["splits"]["train"]["cat"][0]["size"] += 1
    assert manifest_checksum(other) != manifest_checksum(manifest)


def test_decode_finds_a_listed_unchanged_file_tensorflow_cannot_read(tmp_path, write_image):
    dataset = tmp_path / "hand_made"
    entries = {split: {"cat": [], "dog": []} for split in ("train", "validation", "test")}
    for label in ("cat", "dog"):
        path = write_image(dataset / "train" / label / f"{label}.0.jpg")
        entries["train"][label].append(file_entry(path, made="copy"))
    broken = dataset / "train" / "dog" / "dog.1.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    entries["train"]["dog"].append(file_entry(broken, made="copy"))
    manifest = build_manifest(
        source="hand", layout="class-folders", selection="first", seed=None,
        requested={"train": 2, "validation": 0, "test": 0}, classes=["cat", "dog"],
        splits=entries,
    )
    write_manifest(dataset, manifest)

    assert verify_dataset(dataset, full=True).files == 3  # listed and unchanged
    with pytest.raises(PipelineError, match=r"1 files cannot be decoded .*train/dog/dog\.1\.jpg"):
        verify_dataset(dataset, decode=True)
