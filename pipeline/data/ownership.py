"""What proves a folder is a dataset this package wrote, and deleting only that.

A folder is ours when its ``manifest.json`` is our format and it holds nothing but that
manifest, the split and class folders it names and the files it lists (and the hidden
temporaries of an atomic write of one of those, left by a killed writer). Anything else there
(``precious.txt``, a stray photo, a folder of notes) is foreign: it is named, and nothing is
deleted. ``destination.py`` replaces and clears datasets with these proofs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.data.manifest import (
    MANIFEST_NAME,
    READABLE_FORMATS,
    SPLITS,
    entry_name_problem,
)
from pipeline.errors import PipelineError

# What atomic_path leaves behind when killed mid-write: ``.<stem>-<8 hex><suffixes>``.
_ATOMIC_TEMPORARY = re.compile(r"^\.(?P<stem>.+)-[0-9a-f]{8}(?P<suffix>\..*)$")


def foreign_entries(dataset_dir: Path) -> list[str]:
    """Paths (relative) in ``dataset_dir`` that its manifest does not prove we wrote.

    A folder without a readable manifest of our format is foreign as a whole, even if it
    holds only split folders: nothing proves whose they are.
    """
    dataset_dir = Path(dataset_dir)
    manifest = our_manifest(dataset_dir)
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
        if is_temporary_of(entry, {MANIFEST_NAME}):
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
            if not ours and not is_temporary_of(file, names):
                foreign.append(file.relative_to(root).as_posix())
    return foreign


def is_temporary_of(path: Path, names: set[str]) -> bool:
    """Whether ``path`` is what an atomic write of one of ``names`` left (a killed writer)."""
    match = _ATOMIC_TEMPORARY.match(path.name)
    return bool(match and path.is_file() and not path.is_symlink()
                and f"{match['stem']}{match['suffix']}" in names)


def our_manifest(dataset_dir: Path) -> dict | None:
    """The manifest of ``dataset_dir`` if it is one of ours, in the shape we write; else None."""
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
                    if entry_name_problem(entry["name"]) or entry_name_problem(label):
                        return None
    except (KeyError, TypeError, AttributeError):
        return None
    return manifest


def remove_dataset(dataset_dir: Path) -> None:
    """Delete a dataset folder, file by listed file; refuse if anything foreign is there.

    Only names ``foreign_entries`` accepts are removed, and folders with ``rmdir`` (which
    fails on a folder that is not empty), so a file added meanwhile is never deleted. The
    manifest goes last, so a deletion that is stopped half-way can be finished later: what
    is left is still proven ours. A folder that holds nothing but the manifest's temporaries
    is what a deletion stopped after the manifest left.
    """
    dataset_dir = Path(dataset_dir)
    if not all(is_temporary_of(entry, {MANIFEST_NAME}) for entry in dataset_dir.iterdir()):
        manifest = our_manifest(dataset_dir)
        foreign = foreign_entries(dataset_dir)
        if foreign or manifest is None:
            raise PipelineError(f"{dataset_dir}: holds {', '.join(foreign[:5])}, which this "
                                "package did not write; not deleting it")
        for split in SPLITS:
            split_dir = dataset_dir / split
            if not split_dir.is_dir():
                continue
            for class_dir in split_dir.iterdir():
                listed = {e["name"] for e in manifest["splits"][split].get(class_dir.name, [])}
                for file in class_dir.iterdir():
                    if file.name in listed or is_temporary_of(file, listed):
                        file.unlink()
                class_dir.rmdir()
            split_dir.rmdir()
        (dataset_dir / MANIFEST_NAME).unlink()
    for leftover in dataset_dir.iterdir():  # atomic temporaries of the manifest
        if is_temporary_of(leftover, {MANIFEST_NAME}):
            leftover.unlink()
    dataset_dir.rmdir()


def is_whole(dataset_dir: Path) -> bool:
    """Our manifest, and every file it lists still there: not a half-deleted dataset."""
    manifest = our_manifest(dataset_dir)
    return manifest is not None and not foreign_entries(dataset_dir) and all(
        (dataset_dir / split / label / entry["name"]).is_file()
        for split in SPLITS for label in manifest["classes"]
        for entry in manifest["splits"][split][label]
    )
