"""A source's photos per class: its folders (``layouts.py``), or a CSV naming each file's label.

Competitions often ship a flat folder of photos and a ``labels.csv`` (``id,label``,
``image,class``, ``file,category`` ...). ``labels`` names that CSV; its header names are
detected (``FILE_COLUMNS``, ``LABEL_COLUMNS``) or given (``labels_columns`` ``FILE,LABEL``), and
a CSV without a header is read as two columns, file then label. A file is named as it is in
the folder (``cat_1.jpg``, or a path inside it: ``images/cat_1.jpg``), or by its name without
the extension (``id`` ``0042`` for ``0042.jpg``).

A flat folder holding one CSV file, whose names give no classes, is labelled by that CSV
without asking (``run --source folder`` alone works on it); the summary names the CSV.

Nothing is guessed past that: a row naming a file that is not there, a file listed twice
with two labels, a label that cannot be a folder name, and labels that differ only in case
are each refused in one line naming the row. Photos the CSV does not list are passed over
and listed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.data.layouts import (
    IMAGE_EXTENSIONS,
    KAGGLE_NAME,
    SourceScan,
    natural_key,
    portable_name,
    scan_source,
    shown,
)
from pipeline.data.manifest import entry_name_problem
from pipeline.errors import PipelineError

LABELS_LAYOUT = "csv-labels"
# Header names, in the order they are preferred, lower-cased.
FILE_COLUMNS = ("filename", "file_name", "file", "image", "image_name", "image_id", "img",
                "path", "filepath", "file_path", "id", "name", "fname")
LABEL_COLUMNS = ("label", "labels", "class", "class_name", "category", "target", "species",
                 "breed", "y")


def scan_photos(source: Path, labels: Path | None = None,
                labels_columns: object = None) -> SourceScan:
    """The photos of ``source`` per class: from ``labels`` (a CSV) when given or found, else
    from the folder's layout (``layouts.scan_source``)."""
    source = Path(source).expanduser()
    if labels is None and labels_columns is not None:
        raise PipelineError("`labels_columns`: name the CSV with `labels` too")
    if labels is None:
        labels = _lone_csv(source)
    if labels is None:
        return scan_source(source)
    scan_source_checks(source)
    return scan_labelled(source, Path(labels).expanduser(), labels_columns)


def scan_source_checks(source: Path) -> None:
    """A source folder that is there and is a folder (the layouts' first checks)."""
    if not source.is_dir():
        scan_source(source)  # says in one line what it is instead


def scan_labelled(source: Path, labels: Path, labels_columns: object = None) -> SourceScan:
    """The photos of ``source`` that ``labels`` lists, per (lower-cased) label."""
    rows = _read_rows(labels)
    file_column, label_column, first = _columns(rows, labels, labels_columns, source)
    stems = _stems(source)
    chosen: dict[Path, tuple[str, int, str]] = {}  # file -> (label, row, label as written)
    spelled: dict[str, tuple[str, int]] = {}  # label -> (as written, row)
    missing: list[tuple[int, str]] = []
    for number, row in enumerate(rows[first:], start=first + 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(file_column, label_column):
            raise _row_error(labels, number, f"has {len(row)} cells, the columns need "
                             f"{max(file_column, label_column) + 1}")
        name, written = row[file_column].strip(), row[label_column].strip()
        path = _photo(source, name, stems, labels, number)
        if path is None:
            missing.append((number, name))
            continue
        label = _label(written, labels, number, spelled)
        if path in chosen and chosen[path][0] != label:
            before = chosen[path]
            raise _row_error(labels, number, f"labels {name!r} {written!r}, but row {before[1]} "
                             f"labels it {before[2]!r}; keep one label per file")
        chosen.setdefault(path, (label, number, written))
    if missing:
        number, name = missing[0]
        more = f" (and {len(missing) - 1} more rows)" if len(missing) > 1 else ""
        raise _row_error(labels, number, f"names {name!r}, which is not in `source` "
                         f"{shown(source)}{more}; fix the rows or add the photos")
    classes: dict[str, list[Path]] = {}
    for path, (label, _, _) in chosen.items():
        classes.setdefault(label, []).append(path)
    classes = {label: sorted(classes[label], key=natural_key) for label in sorted(classes)}
    ignored = [(path, f"not listed in {shown(labels.name)}") for path in _images(source)
               if path not in chosen]
    scan = SourceScan(source, LABELS_LAYOUT, classes, ignored, labels=labels)
    if len(classes) < 2:
        found = ", ".join(classes) or "none"
        raise PipelineError(f"`labels` {shown(labels)}: names {len(classes)} class ({found}), "
                            "need at least 2")
    return scan


def _read_rows(labels: Path) -> list[list[str]]:
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PipelineError(f"`labels` {shown(labels)}: file not found; give the CSV that "
                            "names each photo's label") from None
    except IsADirectoryError:
        raise PipelineError(f"`labels` {shown(labels)}: is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise PipelineError(f"`labels` {shown(labels)}: is not UTF-8 text; save it as a UTF-8 "
                            "CSV") from None
    except OSError as error:
        raise PipelineError(f"`labels` {shown(labels)}: cannot be read "
                            f"({(error.strerror or str(error)).lower()})") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(text.splitlines(), dialect))
    except csv.Error as error:
        raise PipelineError(f"`labels` {shown(labels)}: not a readable CSV ({error})") from None
    if not any(any(cell.strip() for cell in row) for row in rows):
        raise PipelineError(f"`labels` {shown(labels)}: is empty; list each photo with its label")
    return rows


def _columns(rows: list[list[str]], labels: Path, given: object,
             source: Path) -> tuple[int, int, int]:
    """(file column, label column, index of the first data row)."""
    header = [cell.strip().lower() for cell in rows[0]]
    if given is not None:
        names = given.split(",") if isinstance(given, str) else list(given)  # type: ignore[arg-type]
        if len(names) != 2 or not all(isinstance(n, str) and n.strip() for n in names):
            raise PipelineError(f"`labels_columns` {given!r}: give two column names, the file's "
                                "then the label's, e.g. id,label")
        found = []
        for name in names:
            if name.strip().lower() not in header:
                raise PipelineError(
                    f"`labels_columns` {given!r}: {shown(labels.name)} has no column "
                    f"{name.strip()!r} (its header: {', '.join(rows[0])})"
                )
            found.append(header.index(name.strip().lower()))
        return found[0], found[1], 1
    file_column = next((header.index(n) for n in FILE_COLUMNS if n in header), None)
    label_column = next((header.index(n) for n in LABEL_COLUMNS if n in header), None)
    if file_column is not None and label_column is not None and file_column != label_column:
        return file_column, label_column, 1
    if len(rows[0]) == 2 and (source / rows[0][0].strip()).is_file():
        return 0, 1, 0  # no header: file, label
    raise PipelineError(
        f"`labels` {shown(labels)}: cannot tell which columns hold the file names and the "
        f"labels (its first row: {', '.join(rows[0])}); name them with `labels_columns` "
        "FILE,LABEL"
    )


def _photo(source: Path, name: str, stems: dict[str, list[Path]], labels: Path,
           number: int) -> Path | None:
    """The photo a row names, None when it is not there."""
    relative = Path(name)
    if not name or relative.is_absolute() or ".." in relative.parts:
        raise _row_error(labels, number, f"names {name!r}, not a file inside `source`")
    path = source / relative
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise _row_error(labels, number, f"names {name!r}, which is not an image file")
        return path
    if not relative.suffix and len(stems.get(name, ())) == 1:
        return stems[name][0]
    if len(stems.get(name, ())) > 1:
        found = ", ".join(p.name for p in stems[name])
        raise _row_error(labels, number, f"names {name!r}, which is more than one photo "
                         f"({found}); give the file name with its extension")
    return None


def _label(written: str, labels: Path, number: int, spelled: dict[str, tuple[str, int]]) -> str:
    if not written:
        raise _row_error(labels, number, "has no label")
    label = portable_name(written).lower()
    problem = entry_name_problem(label)
    if problem:
        raise _row_error(labels, number, f"label {written!r} {problem}; it becomes a folder name")
    first = spelled.setdefault(label, (written, number))
    if first[0] != written:
        raise _row_error(labels, number, f"label {written!r} and row {first[1]}'s "
                         f"{first[0]!r} differ only in case; spell the class one way")
    return label


def _images(source: Path) -> list[Path]:
    return sorted((p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in IMAGE_EXTENSIONS), key=natural_key)


def _stems(source: Path) -> dict[str, list[Path]]:
    stems: dict[str, list[Path]] = {}
    for path in _images(source):
        stems.setdefault(path.stem, []).append(path)
    return stems


def _row_error(labels: Path, number: int, problem: str) -> PipelineError:
    return PipelineError(f"`labels` {shown(labels)} row {number}: {problem}")


def _lone_csv(source: Path) -> Path | None:
    """The one CSV of a flat folder whose file names give no classes, else None."""
    try:
        entries = [e for e in source.iterdir() if not e.name.startswith(".")]
    except OSError:
        return None
    if any(e.is_dir() for e in entries):
        return None
    csvs = [e for e in entries if e.suffix.lower() == ".csv" and e.is_file()]
    images = [e for e in entries if e.suffix.lower() in IMAGE_EXTENSIONS]
    prefixes = {m["label"].lower() for e in images if (m := KAGGLE_NAME.match(e.name))}
    if len(prefixes) >= 2 or not images:
        return None
    if len(csvs) > 1:
        raise PipelineError(
            f"`source` {shown(source)}: a flat folder of photos with {len(csvs)} CSV files "
            f"({', '.join(sorted(c.name for c in csvs))}); name the one holding the labels with "
            "`labels`"
        )
    return csvs[0] if csvs else None
