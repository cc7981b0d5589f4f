"""Where a dataset is written: built beside its final place, moved in only when complete.

``data prepare`` and ``data synth`` write into a hidden sibling folder
(``<data_root>/.<name>.partial-<random>``) and rename it to ``<data_root>/<name>`` after the
manifest is written. So a dataset folder is always whole: a full disk, a refused file or
Ctrl-C removes the partial folder and leaves any older dataset of that name as it was.

Replacing an older dataset (``force``) deletes only what can be proven ours: a folder whose
``manifest.json`` is our format, holding nothing but that manifest, the split and class
folders it names and the files it lists. Anything else there (``precious.txt``, a stray
photo, a folder of notes) makes us refuse and name it, and nothing is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from pipeline.data.manifest import MANIFEST_NAME, READABLE_FORMATS, SPLITS
from pipeline.errors import PipelineError
from pipeline.system.atomic import replace_via_aside
from pipeline.system.paths import check_writable_folder, disk_error

# What atomic_path leaves behind when killed mid-write: ``.<stem>-<8 hex><suffixes>``.
_ATOMIC_TEMPORARY = re.compile(r"^\.(?P<stem>.+)-[0-9a-f]{8}(?P<suffix>\..*)$")


def check_destination(dataset_dir: Path, force: bool) -> bool:
    """Say whether ``dataset_dir`` holds an old dataset to replace; refuse if it may not be.

    Raises before anything is written, so a refused run changes nothing.
    """
    dataset_dir = Path(dataset_dir)
    if dataset_dir.is_symlink():
        raise PipelineError(
            f"{dataset_dir}: is a symbolic link; choose another `name` or remove the link"
        )
    if not dataset_dir.exists():
        return False
    if not dataset_dir.is_dir():
        raise PipelineError(f"{dataset_dir}: is a file; choose another `name` or remove it")
    if not any(dataset_dir.iterdir()):
        return False
    if not force:
        raise PipelineError(
            f"{dataset_dir}: already exists and is not empty; set `force` to replace it "
            "or choose another `name`"
        )
    if _our_manifest(dataset_dir) is None:
        raise PipelineError(
            f"{dataset_dir}: has no {MANIFEST_NAME} of a prepared dataset, so nothing proves "
            "this package wrote it; not deleting anything even with `force`: move it away, or "
            "choose another `name`"
        )
    foreign = foreign_entries(dataset_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise PipelineError(
            f"{dataset_dir}: holds {shown}, which this package did not write; not deleting "
            "anything even with `force`: move those away, or choose another `name`"
        )
    return True


def foreign_entries(dataset_dir: Path) -> list[str]:
    """Paths (relative) in ``dataset_dir`` that its manifest does not prove we wrote.

    A folder without a readable manifest of our format is foreign as a whole, even if it
    holds only split folders: nothing proves whose they are.
    """
    dataset_dir = Path(dataset_dir)
    manifest = _our_manifest(dataset_dir)
    if manifest is None:
        return [f"no {MANIFEST_NAME} of a prepared dataset"]
    listed = {
        split: {
            label: {entry["name"] for entry in manifest["splits"][split].get(label, [])}
            for label in manifest["classes"]
        }
        for split in SPLITS
    }
    foreign: list[str] = []
    for entry in sorted(dataset_dir.iterdir()):
        if entry.name == MANIFEST_NAME and entry.is_file() and not entry.is_symlink():
            continue
        if _is_temporary_of(entry, {MANIFEST_NAME}):
            continue
        if entry.name in SPLITS and entry.is_dir() and not entry.is_symlink():
            foreign.extend(_foreign_in_split(entry, listed[entry.name], dataset_dir))
            continue
        foreign.append(entry.name)
    return foreign


def _foreign_in_split(split_dir: Path, listed: dict[str, set[str]], root: Path) -> list[str]:
    foreign = []
    for class_dir in sorted(split_dir.iterdir()):
        if class_dir.name not in listed or class_dir.is_symlink() or not class_dir.is_dir():
            foreign.append(class_dir.relative_to(root).as_posix())
            continue
        names = listed[class_dir.name]
        for file in sorted(class_dir.iterdir()):
            ours = file.name in names and file.is_file() and not file.is_symlink()
            if not ours and not _is_temporary_of(file, names):
                foreign.append(file.relative_to(root).as_posix())
    return foreign


def _is_temporary_of(path: Path, names: set[str]) -> bool:
    match = _ATOMIC_TEMPORARY.match(path.name)
    return bool(match and path.is_file() and not path.is_symlink()
                and f"{match['stem']}{match['suffix']}" in names)


def _our_manifest(dataset_dir: Path) -> dict | None:
    path = dataset_dir / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    try:
        if manifest["format"] not in READABLE_FORMATS:
            return None
        classes = manifest["classes"]
        for split in SPLITS:  # the shape we write; anything else is someone else's manifest
            for label in classes:
                for entry in manifest["splits"][split][label]:
                    if not isinstance(entry["name"], str) or "/" in entry["name"]:
                        return None
    except (KeyError, TypeError):
        return None
    return manifest


def remove_dataset(dataset_dir: Path) -> None:
    """Delete a dataset folder, file by listed file; refuse if anything foreign is there.

    Only names ``foreign_entries`` accepts are removed, and folders with ``rmdir`` (which
    fails on a folder that is not empty), so a file added meanwhile is never deleted.
    """
    dataset_dir = Path(dataset_dir)
    foreign = foreign_entries(dataset_dir)
    if foreign:
        raise PipelineError(f"{dataset_dir}: holds {', '.join(foreign[:5])}, which this package "
                            "did not write; not deleting it")
    # The manifest goes first: if the deletion is interrupted, what is left reads as unfinished.
    (dataset_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for split in SPLITS:
        split_dir = dataset_dir / split
        if not split_dir.is_dir():
            continue
        for class_dir in split_dir.iterdir():
            for file in class_dir.iterdir():
                file.unlink()
            class_dir.rmdir()
        split_dir.rmdir()
    for leftover in dataset_dir.iterdir():  # atomic temporaries of the manifest
        leftover.unlink()
    dataset_dir.rmdir()


@contextlib.contextmanager
def building(dataset_dir: Path, force: bool, root_field: str = "data_root") -> Iterator[Path]:
    """Yield an empty partial folder to build ``dataset_dir`` in; move it into place on success.

    Refuses before yielding (``check_destination``, an unwritable root). On any error the
    partial folder is removed and the old dataset, if any, is untouched; a full disk or a
    read-only file system becomes one ``PipelineError`` line. On success an old dataset is
    moved aside, the new one moved in, and the old one deleted.
    """
    dataset_dir = Path(dataset_dir)
    root = check_writable_folder(dataset_dir.parent, root_field)
    replacing = check_destination(dataset_dir, force)
    try:
        root.mkdir(parents=True, exist_ok=True)
        partial = root / f".{dataset_dir.name}.partial-{secrets.token_hex(4)}"
        partial.mkdir()
    except OSError as error:
        raise disk_error(error, root) or error from None
    try:
        yield partial
        _move_into_place(partial, dataset_dir, replacing)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, OSError):
            friendly = disk_error(error, dataset_dir)
            if friendly is not None:
                raise friendly from None
        raise


def _move_into_place(partial: Path, dataset_dir: Path, replacing: bool) -> None:
    if not replacing:
        # ``os.replace`` onto an empty folder replaces it; onto anything else it fails.
        os.replace(partial, dataset_dir)
        return
    old = dataset_dir.parent / f".{dataset_dir.name}.old-{secrets.token_hex(4)}"
    replace_via_aside(partial, dataset_dir, old)  # the old dataset is put back on failure
    try:
        remove_dataset(old)
    except PipelineError:
        raise PipelineError(
            f"{dataset_dir}: the new dataset is in place, but the old one (moved to {old}) "
            "gained files this package did not write while it was rebuilt; it was kept: look "
            "at it and delete it yourself"
        ) from None
