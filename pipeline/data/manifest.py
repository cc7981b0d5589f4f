"""The manifest of a prepared dataset: what is in it, where it came from, and proof it is complete.

``manifest.json`` is written last, into a dataset folder that is moved into place only when
complete (see ``destination.py``). It lists every file with its sha256, size and
modification time, so ``verify_dataset`` can tell cheaply (sizes and times) or surely
(checksums) that the files on disk are still the ones that were prepared: a photo edited or
deleted after ``data prepare`` is named before training, not found mid-epoch or never.

Every class and file name a manifest lists is checked on reading (``entry_name_problem``):
one name inside its folder, valid UTF-8. A hand-edited ``../../secret.jpg`` would otherwise
make training read a file outside the dataset; a listed file or folder that is a symbolic
link is refused for the same reason (``data prepare`` never writes one).

Format 2 added per-file ``size``, ``mtime_ns`` and ``made`` (how the file was made: ``copy``,
``reflink``, ``link``, ``converted`` or ``generated``). Format 1 manifests are still read;
their files can only be verified by checksum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.system.atomic import write_json

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 2
READABLE_FORMATS = (1, 2)
SPLITS = ("train", "validation", "test")

# Left out of the checksum: re-preparing the same photos must give the same key, whether
# they were copied or linked and whenever that happened.
_VOLATILE_KEYS = frozenset({"created", "link"})
_VOLATILE_FILE_KEYS = frozenset({"mtime_ns", "made"})

# What a training run's folder holds (``pipeline.runs``; named here, data imports no runs).
_RUN_FILES = ("config.json", "history.json", "run.json")

PREPARE_HINT = "prepare it first (`data prepare` with `source` set to your photos)"
REDO_HINT = "prepare it again (`data prepare` with `force`)"


def build_manifest(
    *,
    source: str,
    layout: str,
    selection: str,
    seed: int | None,
    requested: Mapping[str, int] | None,
    classes: Sequence[str],
    splits: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    skipped: Sequence[tuple[str, str]] = (),
    link: bool = False,
    fractions: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Assemble a manifest; ``splits[split][class]`` lists ``file_entry`` dicts.

    ``requested`` is the photos per class asked for (None: a split by ``fractions``, or the
    source's own); ``fractions`` is recorded only when given, so a split by counts has the
    manifest (and the checksum) it always had. ``link`` records whether unchanged photos
    were hard-linked (sharing their bytes and permissions with the source) rather than copied.
    """
    manifest = {
        "format": MANIFEST_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "layout": layout,
        "selection": selection,
        "seed": seed,
        "link": bool(link),
        "requested": (None if requested is None
                      else {split: int(requested[split]) for split in SPLITS}),
        "classes": list(classes),
        "counts": {split: {name: len(splits[split][name]) for name in classes} for split in SPLITS},
        "splits": {
            split: {name: list(splits[split][name]) for name in classes} for split in SPLITS
        },
        "skipped": [{"path": path, "reason": reason} for path, reason in skipped],
    }
    if fractions is not None:
        manifest["fractions"] = {split: float(fractions[split]) for split in SPLITS}
    return manifest


def file_entry(
    path: Path, *, made: str, source: str | None = None, converted: bool = False,
    sha256: str | None = None,
) -> dict[str, Any]:
    """The manifest entry of a file now in place: name, sha256, size, mtime and how it was made."""
    stat = Path(path).stat()
    return {
        "name": Path(path).name,
        "sha256": sha256 or file_sha256(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "source": source,
        "converted": converted,
        "made": made,
    }


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(dataset_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically; call it after every image is in place."""
    path = Path(dataset_dir) / MANIFEST_NAME
    write_json(path, manifest)
    return path


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """Read and sanity-check ``dataset_dir/manifest.json`` (format 1 or 2)."""
    path = Path(dataset_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(
            f"{path}: not found, so preparing {dataset_dir} did not finish; {REDO_HINT}"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: unreadable manifest ({exc}); {REDO_HINT}") from None
    if not isinstance(manifest, dict) or not {"classes", "splits", "counts"} <= manifest.keys():
        raise PipelineError(f"{path}: not a dataset manifest; {REDO_HINT}")
    if manifest.get("format") not in READABLE_FORMATS:
        raise PipelineError(
            f"{path}: manifest format {manifest.get('format')!r}, this version reads "
            f"{' and '.join(map(str, READABLE_FORMATS))}; {REDO_HINT}"
        )
    _check_listing(manifest, path)
    return manifest


# The longest name Linux file systems hold (NAME_MAX); ``data prepare`` writes none longer.
NAME_MAX_BYTES = 255


def entry_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class folder or a file of a dataset, or None when it can.

    One name inside its folder (no ``/``, not ``.`` or ``..``, no NUL), valid UTF-8 and at most
    255 bytes: what ``data prepare`` writes, so anything else was edited in by hand.
    """
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a name"
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return "is not one name inside its folder (no /, not . or .., no NUL)"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > NAME_MAX_BYTES:
        return f"is {size} bytes long, over the {NAME_MAX_BYTES} a file name may have"
    return None


def _check_listing(manifest: Mapping[str, Any], path: Path) -> None:
    """Refuse, naming the field, a listing that is not the shape we write or names a path."""
    classes = manifest["classes"]
    if not isinstance(classes, list) or len(set(map(repr, classes))) != len(classes):
        raise PipelineError(f"{path}: `classes` must be a list of distinct names; {REDO_HINT}")
    for label in classes:
        problem = entry_name_problem(label)
        if problem:
            raise PipelineError(f"{path}: class {label!r} {problem}; the manifest was edited by "
                                f"hand: {REDO_HINT}")
    for split in SPLITS:
        for label in classes:
            entries = _field(manifest, path, "splits", split, label)
            count = _field(manifest, path, "counts", split, label)
            if not isinstance(entries, list):
                raise PipelineError(f"{path}: `splits.{split}.{label}` must be a list of files; "
                                    f"{REDO_HINT}")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise PipelineError(f"{path}: `counts.{split}.{label}` {count!r} must be a whole "
                                    f"number, 0 or more; {REDO_HINT}")
            for entry in entries:
                name = entry.get("name") if isinstance(entry, dict) else entry
                problem = entry_name_problem(name) if isinstance(entry, dict) else "is no entry"
                if problem:
                    raise PipelineError(
                        f"{path}: {split}/{label} entry {name!r} {problem}; the manifest was "
                        f"edited by hand: {REDO_HINT}"
                    )


def _field(manifest: Mapping[str, Any], path: Path, *keys: str) -> Any:
    value: Any = manifest
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            missing = ".".join(keys[: depth + 1])
            raise PipelineError(f"{path}: `{missing}` is missing; {REDO_HINT}")
        value = value[key]
    return value


def require_prepared(dataset_dir: Path) -> dict[str, Any]:
    """Return the manifest of a complete prepared dataset, or say in one line what to run."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.exists():
        raise PipelineError(f"{dataset_dir}: no prepared dataset here; {PREPARE_HINT}")
    if not dataset_dir.is_dir():
        raise PipelineError(f"{dataset_dir}: is a file, not a dataset folder; {PREPARE_HINT}")
    if not (dataset_dir / MANIFEST_NAME).exists():
        marker = next((name for name in _RUN_FILES if (dataset_dir / name).is_file()), None)
        if marker:
            raise PipelineError(
                f"{dataset_dir}: is a training run's folder (it holds {marker}), not a dataset; "
                "give the prepared dataset it was trained on as `data_dir` instead"
            )
        raise PipelineError(
            f"{dataset_dir}: has no {MANIFEST_NAME}, so preparing it did not finish; {REDO_HINT}"
        )
    manifest = read_manifest(dataset_dir)
    for split in SPLITS:
        for name in manifest["classes"]:
            folder = dataset_dir / split / name
            for linked in (folder.parent, folder):
                if linked.is_symlink():
                    raise PipelineError(
                        f"{linked}: is a symbolic link, which `data prepare` never writes (it "
                        f"could lead outside the dataset); {REDO_HINT}"
                    )
            if manifest["counts"][split][name] and not folder.is_dir():
                raise PipelineError(
                    f"{dataset_dir / split / name}: folder listed in the manifest is missing; "
                    f"{REDO_HINT}"
                )
    return manifest


def listed_files(manifest: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(split, class, entry)`` for every file of the manifest, in manifest order."""
    for split in SPLITS:
        for label in manifest["classes"]:
            for entry in manifest["splits"][split][label]:
                yield split, label, entry


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """sha256 (hex) of the manifest's canonical JSON, without creation and modification times.

    Only content counts: the same photos prepared twice (copied or linked) give the same key.
    """
    stable = {key: value for key, value in manifest.items() if key not in _VOLATILE_KEYS}
    stable["splits"] = {
        split: {
            label: [
                {k: v for k, v in entry.items() if k not in _VOLATILE_FILE_KEYS}
                for entry in entries
            ]
            for label, entries in per_class.items()
        }
        for split, per_class in manifest["splits"].items()
    }
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def class_names(manifest: Mapping[str, Any]) -> list[str]:
    """Class names in label order (label ``i`` is ``class_names(manifest)[i]``)."""
    return list(manifest["classes"])


# -- verifying the files against the manifest ---------------------------------------------------


@dataclass(frozen=True)
class DatasetCheck:
    """What ``verify_dataset`` proved: ``files`` files match; ``digest`` keys caches on them.

    ``digest`` is the sha256 of every file's (path, size, mtime) as found on disk: any edit,
    replacement or ``touch`` after this check gives another digest.
    """

    files: int
    digest: str
    full: bool  # checksums compared (not only sizes and times)
    decoded: bool  # every image decoded as training will decode it


def verify_dataset(data_dir: Path, full: bool = False, decode: bool = False) -> DatasetCheck:
    """Check every file the manifest lists against the disk, or name the ones that differ.

    Cheap by default: size and modification time of each file (a stat, no reading); a file
    whose time changed but size did not is read and accepted if its sha256 still matches.
    ``full`` compares every file's sha256. A format-1 manifest records no sizes or times, so
    its files are always compared by sha256. ``decode`` also decodes every image the way the
    training input does (``tf.io.decode_image``), which finds a file that is listed and
    unchanged but that TensorFlow cannot read, before an epoch fails on it.
    """
    data_dir = Path(data_dir)
    manifest = require_prepared(data_dir)
    by_checksum = full or manifest.get("format", 1) < 2
    problems: list[str] = []
    stats: list[str] = []
    count = 0
    for split, label, entry in listed_files(manifest):
        count += 1
        relative = f"{split}/{label}/{entry['name']}"
        path = data_dir / relative
        problem = _file_problem(path, entry, by_checksum)
        if problem:
            problems.append(f"{relative} ({problem})")
            continue
        stat = path.stat()
        stats.append(f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}")
    if problems:
        raise _changed_files_error(data_dir, problems, count)
    if decode:
        _decode_all(data_dir, manifest)
    digest = hashlib.sha256("\n".join(stats).encode("utf-8")).hexdigest()
    return DatasetCheck(files=count, digest=digest, full=by_checksum, decoded=decode)


def _file_problem(path: Path, entry: Mapping[str, Any], by_checksum: bool) -> str | None:
    if path.is_symlink():
        return "a symbolic link, not a file `data prepare` wrote"
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    if not path.is_file():
        return "not a file"
    size = entry.get("size")
    if size is not None and stat.st_size != size:
        return f"{stat.st_size} bytes, was {size}"
    if by_checksum or stat.st_mtime_ns != entry.get("mtime_ns"):
        try:
            same = file_sha256(path) == entry["sha256"]
        except OSError as error:
            return f"unreadable: {error.strerror or error}"
        if not same:
            return "content changed"
    return None


def _changed_files_error(data_dir: Path, problems: list[str], count: int) -> PipelineError:
    return PipelineError(
        f"{data_dir}: {len(problems)} of {count} files differ from {MANIFEST_NAME} since it was "
        f"prepared: {_first_few(problems)}; files were edited, replaced or deleted afterwards: "
        f"{REDO_HINT}"
    )


def _decode_all(data_dir: Path, manifest: Mapping[str, Any]) -> None:
    import tensorflow as tf  # only for this opt-in check: reading a manifest needs no TensorFlow

    bad: list[str] = []
    for split, label, entry in listed_files(manifest):
        relative = f"{split}/{label}/{entry['name']}"
        try:
            data = tf.io.read_file(str(data_dir / relative))
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, ValueError) as error:
            reason = str(getattr(error, "message", error)).strip().splitlines()[0]
            bad.append(f"{relative} ({reason})")
    if bad:
        raise PipelineError(
            f"{data_dir}: {len(bad)} files cannot be decoded by TensorFlow: {_first_few(bad)}; "
            f"remove them from the source photos and {REDO_HINT}"
        )



def _first_few(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
