"""Atomic file writes: an interrupted run leaves either the old file or the new one.

Everything is written to a temporary file in the same directory (so the final
``os.replace`` is a rename on one file system) and only then moved into place. The
temporary file is created with mode 0666 minus the umask, exactly like ``open(path, "w")``
would create it: ``tempfile.mkstemp`` would make every result private (0600), so a dataset
or run written here could not be read by the user's group even where their umask says so.
Folders (a dataset, an export) are made beside their target and swapped in the same way
(``replace_via_aside``); ``remove_path`` clears what such a swap or a killed writer left.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMPORARY_STEM_BYTES = 128


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    The temporary name keeps the last suffix (``model.keras`` -> ``.model-x1y2.keras``),
    because some writers (``keras.Model.save``, ``numpy.save``) choose the format from it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _create_temporary(target: Path) -> Path:
    """Create an empty, new ``.<stem>-<random><suffix>`` beside ``target``, mode 0666 & ~umask.

    The stem is cut to ``TEMPORARY_STEM_BYTES`` so that the temporary name stays within a
    file system's 255 bytes whatever the target's name is (the target itself may be longer
    than the temporary one, never the other way round).
    """
    suffix = target.suffix or ".tmp"
    stem = target.stem.encode("utf-8", "surrogateescape")[:TEMPORARY_STEM_BYTES]
    stem_text = stem.decode("utf-8", "ignore")
    for _ in range(100):
        candidate = target.parent / f".{stem_text}-{secrets.token_hex(4)}{suffix[:32]}"
        try:
            # O_EXCL: never reuse a file someone else made; 0o666: the kernel applies the umask.
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"{target.parent}: no free temporary name beside {target.name}")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (paths and numpy scalars become plain values)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def replace_via_aside(new: Path, target: Path, aside: Path) -> None:
    """Move ``new`` onto the existing ``target``, which is moved to ``aside`` first.

    A folder cannot be replaced in one rename (nor a file by a folder), so the old one steps
    aside; if ``new`` then cannot move in, the old one is put back before the error goes on.
    The caller removes ``aside`` (how depends on what it may hold).
    """
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(aside, target)
        raise


def remove_path(path: Path) -> None:
    """Delete a file, link or folder tree if it is there, ignoring what cannot be removed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
