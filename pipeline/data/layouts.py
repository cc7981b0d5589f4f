"""Finding the photos of each class in a source folder, whichever way it is laid out.

Four layouts are recognised (a fifth, a flat folder labelled by a CSV, is ``sources.py``'s):

* ``kaggle-flat``: Kaggle's Dogs vs. Cats ``train/`` folder, files named ``<class>.<id>.<ext>``
  (``cat.0.jpg`` ... ``dog.12499.jpg``) side by side; the class is the name's prefix.
* ``petimages``: Microsoft's PetImages download, ``Cat/`` and ``Dog/`` holding ``0.jpg`` ...
* ``class-folders``: any folder with one sub-folder per class, as Keras'
  ``image_dataset_from_directory`` expects.
* ``pre-split``: a source already split, as many Kaggle and Roboflow exports are: ``train/``,
  ``val/`` (or ``validation/``, ``valid/``) and ``test/``, each holding the same class
  folders; train/ and one of the others at least (the missing one is drawn from train/).

A class folder holds its photos directly: one that is empty, or that holds folders of photos
(nested classes), is refused, as are class names that differ only in case, and classes that
differ between the splits of a pre-split source. Archive and file-system clutter
(``__MACOSX/``, hidden files) is passed over and listed.

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

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

KAGGLE_NAME = re.compile(r"^(?P<label>[A-Za-z][A-Za-z0-9_-]*)\.(?P<id>\d+)\.[A-Za-z]+$")
PETIMAGES_CLASS_FOLDERS = frozenset({"Cat", "Dog"})

# Sub-folders that mean "these are splits, not classes": the user pointed one level too high.
_SPLIT_FOLDER_NAMES = frozenset({"train", "test", "test1", "validation", "valid", "val"})
# The folders of a pre-split source, and the split each one is.
SPLIT_FOLDERS = {"train": "train", "val": "validation", "validation": "validation",
                 "valid": "validation", "test": "test"}
# Folders archives and file systems add beside the photos: never classes.
_CLUTTER_FOLDERS = frozenset({"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information"})

EXPECTED_LAYOUT = (
    "point `source` at Kaggle's train/ folder (cat.0.jpg, dog.0.jpg, ...), at a folder with "
    "one sub-folder of photos per class, or at one holding train/, val/ and test/ of such "
    "sub-folders"
)


@dataclass
class SourceScan:
    """The photos found in a source folder, per class, and what was passed over and why."""

    source: Path
    layout: str
    classes: dict[str, list[Path]]
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    # A pre-split source's own splits: split -> class -> photos, for the splits it holds.
    given: dict[str, dict[str, list[Path]]] | None = None
    labels: Path | None = None  # the CSV the classes were read from (``sources.py``)


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
    split_folders = _split_folders(source, folders)
    if "train" in split_folders and len(split_folders) > 1 and not _holds_images(
        split_folders["train"]
    ):
        return _checked(_scan_pre_split(source, split_folders, folders, files, ignored))
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

    if folders_with_images or (folders and not image_files):
        scan = _scan_class_folders(source, folders, ignored)
        ignored.extend((f, "not in a class folder") for f in files)
    else:
        scan = _scan_kaggle_flat(source, files, ignored)
        ignored.extend((d, "folder inside a flat Kaggle folder") for d in folders)
    return _checked(scan)


def _checked(scan: SourceScan) -> SourceScan:
    """``scan``, once it is proven to hold two classes at least."""
    source = scan.source
    if len(scan.classes) < 2:
        found = ", ".join(scan.classes) or "none"
        flat = " (or, for a flat folder, give its labels' CSV as `labels`)" if (
            scan.layout == "kaggle-flat" and not scan.classes) else ""
        raise PipelineError(
            f"`source` {shown(source)}: found {len(scan.classes)} class ({found}), need at least "
            f"2; {EXPECTED_LAYOUT}{flat}"
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


def _split_folders(source: Path, folders: list[Path]) -> dict[str, Path]:
    """The folders of ``source`` named as splits (``val/`` -> validation), one per split."""
    found: dict[str, Path] = {}
    for folder in folders:
        split = SPLIT_FOLDERS.get(folder.name.lower())
        if split is None:
            continue
        if split in found:
            raise PipelineError(
                f"`source` {shown(source)}: {shown(found[split].name)}/ and "
                f"{shown(folder.name)}/ are both a {split} split; keep one of them"
            )
        found[split] = folder
    return found


def _scan_pre_split(
    source: Path, split_folders: dict[str, Path], folders: list[Path], files: list[Path],
    ignored: list[tuple[Path, str]],
) -> SourceScan:
    """The class folders of each split folder, the same classes in every one."""
    ignored.extend((f, "not in a split folder") for f in files)
    ignored.extend((d, "not a split folder (train, val, test)") for d in folders
                   if d not in split_folders.values())
    given: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        if split not in split_folders:
            continue
        folder = split_folders[split]
        inner_files, inner_folders = _visible_entries(folder, ignored)
        loose = [f for f in inner_files if f.suffix.lower() in IMAGE_EXTENSIONS]
        if loose or not inner_folders:
            what = (f"holds photos directly ({shown(loose[0].name)} ...)" if loose
                    else "holds no class folders")
            raise PipelineError(
                f"`source` {shown(source)}: {shown(folder.name)}/ {what}; every split folder "
                "needs one sub-folder of photos per class, as train/ has (or point `source` "
                f"at {shown(split_folders['train'])} alone to split it)"
            )
        ignored.extend((f, "not in a class folder") for f in inner_files)
        given[split] = _scan_class_folders(folder, inner_folders, ignored).classes
    _same_classes(source, given, split_folders)
    classes = {label: [path for split in given.values() for path in split[label]]
               for label in given["train"]}
    return SourceScan(source, "pre-split", classes, ignored, given=given)


def _same_classes(source: Path, given: dict[str, dict[str, list[Path]]],
                  split_folders: dict[str, Path]) -> None:
    train = set(given["train"])
    problems = []
    for split, classes in given.items():
        name = shown(split_folders[split].name)
        if missing := sorted(train - set(classes)):
            problems.append(f"{name}/ lacks {', '.join(map(repr, missing))}")
        if extra := sorted(set(classes) - train):
            problems.append(f"{name}/ has {', '.join(map(repr, extra))}, which train/ lacks")
    if problems:
        raise PipelineError(
            f"`source` {shown(source)}: its splits hold different classes: "
            f"{'; '.join(problems)}; give every split folder the same class folders"
        )


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
        _refuse_nested(source, folder, subfolders, ignored)
        if not images:
            found = "is empty" if not files else "holds no photos (only other files)"
            raise PipelineError(
                f"`source` {shown(source)}: class folder {shown(folder.name)!r} {found}; "
                f"add its photos or remove the folder"
            )
        classes[label] = sorted(images, key=natural_key)
    return SourceScan(source, layout, classes, ignored)


def _refuse_nested(source: Path, folder: Path, subfolders: list[Path],
                   ignored: list[tuple[Path, str]]) -> None:
    """A class folder holding folders of photos is nested classes: say so, never guess."""
    for sub in subfolders:
        if _holds_images(sub) or any(d.is_dir() and _holds_images(d) for d in _listing(sub)):
            raise PipelineError(
                f"`source` {shown(source)}: class folder {shown(folder.name)!r} holds a folder "
                f"of photos ({shown(folder.name)}/{shown(sub.name)}/); a class folder holds its "
                "photos directly: move them up into it, or make the sub-folder a class of its "
                "own beside it"
            )
        ignored.append((sub, "folder without images inside a class folder"))


def _visible_entries(
    folder: Path, ignored: list[tuple[Path, str]]
) -> tuple[list[Path], list[Path]]:
    files, folders = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            ignored.append((entry, "hidden"))
        elif entry.name in _CLUTTER_FOLDERS and entry.is_dir():
            ignored.append((entry, "archive or file-system metadata"))
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
        for p in _listing(folder)
    )


def _listing(folder: Path) -> list[Path]:
    """The entries of ``folder``; none when it cannot be listed (a permission, a broken link)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


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
