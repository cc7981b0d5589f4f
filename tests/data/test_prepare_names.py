"""Photo names a file system allows but a dataset cannot hold as they are: names at the 255-byte
limit, names that are not valid UTF-8, control characters. Each gets a valid name that fits,
made the same way every time, and the manifest records the source's name, escaped."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.data.manifest import MANIFEST_NAME, require_prepared, verify_dataset
from pipeline.data.prepare import PrepareConfig, prepare_dataset

NAME_MAX = 255


def _raw(folder: Path, name: bytes) -> Path:
    """A path under ``folder`` whose last part is the bytes ``name`` exactly."""
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))


def class_source(tmp_path: Path, write_image, names: dict[str, list[bytes]]) -> Path:
    """Every photo JPEG data: one named ``.png`` is stored as ``.jpg`` (its bytes as they are)."""
    source = tmp_path / "photos"
    for label, files in names.items():
        folder = _raw(source, label.encode() if isinstance(label, str) else label)
        for name in files:
            write_image(_raw(folder, name), fmt="JPEG")
    return source


def dataset_names(dataset: Path) -> list[bytes]:
    """Every photo's path in the dataset, relative, as bytes."""
    return sorted(os.fsencode(p.relative_to(dataset)) for p in dataset.rglob("*")
                  if p.is_file() and p.name != MANIFEST_NAME)


def test_names_at_the_file_system_limit_are_prepared_and_shortened_the_same_way(
    tmp_path, write_image, small_fs
):
    longest = b"a" * (NAME_MAX - 4)
    names = [longest + b".jpg", b"b" * (NAME_MAX - 4) + b".png",  # stored as .jpg, same length
             longest + b".png",  # stored under the name of the first: a suffix makes it longer
             "é".encode() * 125 + b".jpg"]  # 254 bytes in two-byte characters
    source = class_source(tmp_path, write_image, {"cat": names, "dog": names})
    data_root = small_fs("8m")

    first = prepare_dataset(PrepareConfig(source=source, data_root=data_root, name="one",
                                          train=2, validation=1, test=1), progress=False)
    again = prepare_dataset(PrepareConfig(source=source, data_root=data_root, name="two",
                                          train=2, validation=1, test=1), progress=False)

    assert verify_dataset(first.dataset_dir, full=True).files == 8
    written = dataset_names(first.dataset_dir)
    assert written == dataset_names(again.dataset_dir)  # the same names every time
    names_only = [os.path.basename(path) for path in written]
    assert max(len(name) for name in names_only) <= NAME_MAX
    assert len({path.lower() for path in written}) == 8  # none written over another
    assert longest + b".jpg" in names_only  # a name that fits is kept as it is
    assert any(b"~" in name and len(name) == NAME_MAX for name in names_only)  # cut, tagged
    manifest = json.loads((first.dataset_dir / MANIFEST_NAME).read_text())
    sources = {e["source"] for split in manifest["splits"].values() for entries in split.values()
               for e in entries}
    assert f"cat/{'a' * (NAME_MAX - 4)}.png" in sources


def test_a_name_that_is_not_utf8_gets_a_valid_one_and_training_can_read_the_manifest(
    tmp_path, write_image
):
    names = [b"caf\xe9.1.jpg", b"cat.2.jpg", b"line\nbreak.jpg", b"cat.4.jpg"]
    source = class_source(tmp_path, write_image, {"cat": names, b"chi\xe9n": names})
    (_raw(source / "cat", b"notes\xff.txt")).write_bytes(b"not a photo")

    result = prepare_dataset(PrepareConfig(source=source, data_root=tmp_path / "data",
                                           name="odd", train=2, validation=1, test=1),
                             progress=False)

    require_prepared(result.dataset_dir)
    assert verify_dataset(result.dataset_dir, full=True).files == 8
    assert result.classes == ["cat", "chi%e9n"]
    written = dataset_names(result.dataset_dir)
    assert b"train/cat/caf%E9.1.jpg" in written
    assert b"test/chi%e9n/line%0Abreak.jpg" in written
    for name in written:
        name.decode("utf-8")  # every name in the dataset is valid UTF-8
    manifest = json.loads((result.dataset_dir / MANIFEST_NAME).read_bytes().decode("utf-8"))
    sources = [e["source"] for e in manifest["splits"]["train"]["cat"]]
    assert "cat/caf\\xe9.1.jpg" in sources
    assert manifest["skipped"] == [{"path": "cat/notes\\xff.txt",
                                    "reason": "not an image file (.txt)"}]
    result.summary().encode("utf-8")  # printable as it is, escaped
    assert "notes\\xff.txt" in result.summary()
