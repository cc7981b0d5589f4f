"""Finding the photos of each class in a source folder, whichever way it is laid out.

Three layouts are recognised:

* ``kaggle-flat``: Kaggle's Dogs vs. Cats ``train/`` folder, files named ``<class>.<id>.<ext>``
  (``cat.0.jpg`` ... ``dog.12499.jpg``) side by side; the class is the name's prefix.
* ``petimages``: Microsoft's PetImages download, ``Cat/`` and ``Dog/`` holding ``0.jpg`` ...
* ``class-folders``: any folder with one sub-folder per class, as Keras'
  ``image_dataset_from_directory`` expects.

Class names are lower-cased in every layout, so Kaggle and PetImages both give ``cat`` and
``dog`` and a model trained on one can be evaluated on the other. Files are listed in natural
order (``2.jpg`` before ``10.jpg``), which for Kaggle is id order: the order the classic
small-data split is taken in.

A name the file system allows but a dataset cannot hold as it is (bytes that are not UTF-8,
from an old archive; a newline) is given a valid one by ``portable_name`` (``caf%E9.jpg``),
and shown in messages and records by ``shown`` (``caf\\xe9.jpg``): a manifest must be valid
UTF-8, or every later command fails reading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.manifest import MANIFEST_NAME, SPLITS
from pipeline.errors import PipelineError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})

KAGGLE_NAME = re.compile(r"^(?P<label>[A-Za-z][A-Za-z0-9_-]*)\.(?P<id>\d+)\.[A-Za-z]+$")
PETIMAGES_CLASS_FOLDERS = frozenset({"Cat", "Dog"})

# Sub-folders that mean "these are splits, not classes": the user pointed one level too high.
_SPLIT_FOLDER_NAMES = frozenset({"train", "test", "test1", "validation", "valid", "val"})

EXPECTED_LAYOUT = (
    "point `source` at Kaggle's train/ folder (cat.0.jpg, dog.0.jpg, ...) "
    "or at a folder with one sub-folder of photos per class"
)


@dataclass
class SourceScan:
    """The photos found in a source folder, per class, and what was passed over and why."""

    source: Path
    layout: str
    classes: dict[str, list[Path]]
    ignored: list[tuple[Path, str]] = field(default_factory=list)


def find_class_images(source: Path) -> dict[str, list[Path]]:
    """Map each class name to its image files in natural order (see ``scan_source``)."""
    return scan_source(source).classes


def scan_source(source: Path) -> SourceScan:
    """Detect the layout of ``source`` and list its images per class.

    Hidden files, non-image files (``Thumbs.db``) and names that do not fit the layout are
    listed in ``ignored`` with a reason, never dropped silently. Nothing is decoded here.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise PipelineError(f"`source` {shown(source)}: folder not found; {EXPECTED_LAYOUT}")
    if not source.is_dir():
        raise PipelineError(
            f"`source` {shown(source)}: is a file, not a folder; {EXPECTED_LAYOUT}"
        )

    _refuse_prepared_dataset(source)
    ignored: list[tuple[Path, str]] = []
    files, folders = _visible_entries(source, ignored)
    if not files and not folders:
        raise PipelineError(f"`source` {shown(source)}: folder is empty; {EXPECTED_LAYOUT}")

    image_files = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
    if not image_files and len(folders) == 1 and not _holds_images(folders[0]):
        # An archive that unpacks into one wrapper folder (PetImages/ inside the download).
        only = folders[0]
        ignored.extend((f, "not in a class folder") for f in files)
        nested = scan_source(only)
        nested.ignored[:0] = ignored
        nested.source = source
        return nested

    folders_with_images = [d for d in folders if _holds_images(d)]
    split_like = {d.name.lower() for d in folders_with_images} & _SPLIT_FOLDER_NAMES
    if "train" in split_like and len(split_like) > 1:
        raise PipelineError(
            f"`source` {shown(source)}: holds split folders ({', '.join(sorted(split_like))}), "
            f"not class folders; use `source` {shown(source / 'train')}"
        )

    if folders_with_images:
        scan = _scan_class_folders(source, folders_with_images, ignored)
        ignored.extend((f, "not in a class folder") for f in files)
        for folder in folders:
            if folder not in folders_with_images:
                ignored.append((folder, "folder without images"))
    else:
        scan = _scan_kaggle_flat(source, files, ignored)
        ignored.extend((d, "folder inside a flat Kaggle folder") for d in folders)

    if len(scan.classes) < 2:
        found = ", ".join(scan.classes) or "none"
        raise PipelineError(
            f"`source` {shown(source)}: found {len(scan.classes)} class ({found}), need at least "
            f"2; {EXPECTED_LAYOUT}"
        )
    return scan


def _refuse_prepared_dataset(source: Path) -> None:
    """A dataset this package prepared is no source of photos: say so, and where it goes."""
    if (source / MANIFEST_NAME).is_file() and any((source / s).is_dir() for s in SPLITS):
        raise PipelineError(
            f"`source` {shown(source)}: is already a prepared dataset (it holds {MANIFEST_NAME} "
            "and split folders); pass it as the dataset (`data_dir`) to train on it, or point "
            "`source` at the original photos to prepare it again"
        )


def _scan_kaggle_flat(
    source: Path, files: list[Path], ignored: list[tuple[Path, str]]
) -> SourceScan:
    by_class: dict[str, list[tuple[int, str, Path]]] = {}
    for path in files:
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            ignored.append((path, f"not an image file ({path.suffix or 'no extension'})"))
            continue
        match = KAGGLE_NAME.match(path.name)
        if match is None:
            ignored.append((path, "name is not <class>.<id>.<ext> (as in cat.0.jpg)"))
            continue
        label = match["label"].lower()
        by_class.setdefault(label, []).append((int(match["id"]), path.name, path))
    classes = {label: [p for *_, p in sorted(items)] for label, items in sorted(by_class.items())}
    return SourceScan(source, "kaggle-flat", classes, ignored)


def _scan_class_folders(
    source: Path, folders: list[Path], ignored: list[tuple[Path, str]]
) -> SourceScan:
    names = {d.name for d in folders}
    layout = "petimages" if names == PETIMAGES_CLASS_FOLDERS else "class-folders"
    classes: dict[str, list[Path]] = {}
    original_names: dict[str, str] = {}
    for folder in sorted(folders, key=lambda d: d.name.lower()):
        label = portable_name(folder.name).lower()
        if label in classes:
            first = original_names[label]
            how = ("differ only in case" if first.lower() == folder.name.lower()
                   else f"give the same class name {label!r}")
            raise PipelineError(
                f"`source` {shown(source)}: class folders {shown(first)!r} and "
                f"{shown(folder.name)!r} {how}; rename or merge one of them"
            )
        original_names[label] = folder.name
        files, subfolders = _visible_entries(folder, ignored)
        images = []
        for path in files:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                images.append(path)
            else:
                ignored.append((path, f"not an image file ({path.suffix or 'no extension'})"))
        ignored.extend((d, "sub-folder inside a class folder") for d in subfolders)
        classes[label] = sorted(images, key=natural_key)
    return SourceScan(source, layout, classes, ignored)


def _visible_entries(
    folder: Path, ignored: list[tuple[Path, str]]
) -> tuple[list[Path], list[Path]]:
    files, folders = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            ignored.append((entry, "hidden"))
        elif entry.is_dir():
            folders.append(entry)
        elif entry.is_file():
            files.append(entry)
        else:
            ignored.append((entry, "not a regular file"))
    return files, folders


def _holds_images(folder: Path) -> bool:
    return any(
        p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        for p in folder.iterdir()
    )


def natural_key(path: Path) -> tuple:
    """Sort key that orders numbers by value: ``img2.jpg`` before ``img10.jpg``."""
    parts = re.split(r"(\d+)", path.name)
    return (
        tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p),
        path.name,
    )


def portable_name(name: str) -> str:
    """``name`` as a valid UTF-8 file name without control characters, the same every time.

    Each byte that is not UTF-8 (Python lists it as a surrogate, ``\\udce9``) and each control
    character becomes ``%XX``: ``caf\\xe9.jpg`` is stored as ``caf%E9.jpg``.
    """
    return _escaped(name, "%{:02X}")


def shown(text: object) -> str:
    """``text`` (a path or name) printable and storable as UTF-8: bytes that are not UTF-8
    and control characters are written ``\\xNN``, as Python writes them."""
    return _escaped(str(text), "\\x{:02x}")


def _escaped(text: str, form: str) -> str:
    parts = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.listdir gives it
            parts.append(form.format(code - 0xDC00))
        elif code < 0x20 or code == 0x7F:
            parts.append(form.format(code))
        else:
            parts.append(char)
    return "".join(parts)
