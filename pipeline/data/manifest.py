"""The manifest of a prepared dataset: what is in it, where it came from, and proof it is complete.

``manifest.json`` is written last and atomically, so a dataset folder without one is a run
that did not finish. Its checksum names the exact files (by sha256), which is what feature
caches are keyed on: a different selection of photos can never reuse stale features.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.atomic import write_json
from pipeline.errors import PipelineError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
SPLITS = ("train", "validation", "test")

# Left out of the checksum: re-preparing the same photos must give the same key.
_VOLATILE_KEYS = frozenset({"created"})

_PREPARE_HINT = "run `python cli.py data prepare --source PATH` first"
_REDO_HINT = "re-run `python cli.py data prepare --source PATH --force`"


def build_manifest(
    *,
    source: str,
    layout: str,
    selection: str,
    seed: int | None,
    requested: Mapping[str, int],
    classes: Sequence[str],
    splits: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    skipped: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Assemble a manifest; ``splits[split][class]`` lists ``{name, sha256, source, converted}``."""
    return {
        "format": MANIFEST_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "layout": layout,
        "selection": selection,
        "seed": seed,
        "requested": {split: int(requested[split]) for split in SPLITS},
        "classes": list(classes),
        "counts": {split: {name: len(splits[split][name]) for name in classes} for split in SPLITS},
        "splits": {
            split: {name: list(splits[split][name]) for name in classes} for split in SPLITS
        },
        "skipped": [{"path": path, "reason": reason} for path, reason in skipped],
    }


def write_manifest(dataset_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically; call it after every image is in place."""
    path = Path(dataset_dir) / MANIFEST_NAME
    write_json(path, manifest)
    return path


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """Read and sanity-check ``dataset_dir/manifest.json``."""
    path = Path(dataset_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(
            f"{path}: not found, so preparing {dataset_dir} did not finish; {_REDO_HINT}"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: unreadable manifest ({exc}); {_REDO_HINT}") from None
    if not isinstance(manifest, dict) or not {"classes", "splits", "counts"} <= manifest.keys():
        raise PipelineError(f"{path}: not a dataset manifest; {_REDO_HINT}")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise PipelineError(
            f"{path}: manifest format {manifest.get('format')!r}, this version reads "
            f"{MANIFEST_FORMAT}; {_REDO_HINT}"
        )
    return manifest


def require_prepared(dataset_dir: Path) -> dict[str, Any]:
    """Return the manifest of a complete prepared dataset, or say in one line what to run."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.exists():
        raise PipelineError(f"{dataset_dir}: no prepared dataset here; {_PREPARE_HINT}")
    if not dataset_dir.is_dir():
        raise PipelineError(f"{dataset_dir}: is a file, not a dataset folder; {_PREPARE_HINT}")
    if not (dataset_dir / MANIFEST_NAME).exists():
        raise PipelineError(
            f"{dataset_dir}: has no {MANIFEST_NAME}, so preparing it did not finish; {_REDO_HINT}"
        )
    manifest = read_manifest(dataset_dir)
    for split in SPLITS:
        for name in manifest["classes"]:
            if manifest["counts"][split][name] and not (dataset_dir / split / name).is_dir():
                raise PipelineError(
                    f"{dataset_dir / split / name}: folder listed in the manifest is missing; "
                    f"{_REDO_HINT}"
                )
    return manifest


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """sha256 (hex) of the manifest's canonical JSON, creation time left out."""
    stable = {key: value for key, value in manifest.items() if key not in _VOLATILE_KEYS}
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def class_names(manifest: Mapping[str, Any]) -> list[str]:
    """Class names in label order (label ``i`` is ``class_names(manifest)[i]``)."""
    return list(manifest["classes"])


def check_destination(dataset_dir: Path, force: bool) -> bool:
    """Say whether ``dataset_dir`` holds an old dataset to replace; refuse if it may not be.

    Raises before anything is written, so a refused run changes nothing.
    """
    dataset_dir = Path(dataset_dir)
    if dataset_dir.is_symlink():
        raise PipelineError(
            f"{dataset_dir}: is a symbolic link; choose another --name or remove the link"
        )
    if not dataset_dir.exists():
        return False
    if not dataset_dir.is_dir():
        raise PipelineError(f"{dataset_dir}: is a file; choose another --name or remove it")
    if not any(dataset_dir.iterdir()):
        return False
    if not force:
        raise PipelineError(
            f"{dataset_dir}: already exists and is not empty; pass --force to replace it "
            "or choose another --name"
        )
    if not looks_like_dataset(dataset_dir):
        raise PipelineError(
            f"{dataset_dir}: exists and does not look like a prepared dataset (no "
            f"{MANIFEST_NAME}, other files than {'/'.join(SPLITS)}); not deleting it even "
            "with --force: choose another --name or move it away"
        )
    return True


def looks_like_dataset(dataset_dir: Path) -> bool:
    """True for a folder this package wrote: a manifest, or nothing but split folders."""
    if (dataset_dir / MANIFEST_NAME).is_file():
        return True
    for entry in dataset_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink() and entry.name in SPLITS:
            continue
        # A write cut short leaves atomic_path's ".manifest-xyz.json" temp file behind.
        if entry.is_file() and entry.name.startswith(".manifest-"):
            continue
        return False
    return True


def remove_dataset(dataset_dir: Path) -> None:
    """Delete a dataset folder that ``check_destination`` allowed to be replaced."""
    dataset_dir = Path(dataset_dir)
    if dataset_dir.is_dir() and any(dataset_dir.iterdir()) and not looks_like_dataset(dataset_dir):
        raise PipelineError(f"{dataset_dir}: does not look like a prepared dataset; not deleting")
    # The manifest goes first: if the deletion is interrupted, what is left reads as unfinished.
    (dataset_dir / MANIFEST_NAME).unlink(missing_ok=True)
    shutil.rmtree(dataset_dir, ignore_errors=False)
