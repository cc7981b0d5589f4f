"""Names and paths a user gives, checked the same way by every command.

A dataset name, a run name or a class name becomes a folder under a root the user chose
(``data_root``, ``models_dir``); if ``../x`` or ``/etc`` were accepted, a command would write
(and with ``force``, delete) outside that root. Output files and folders are checked before
any work, so a long computation never ends in a traceback about the place it writes to.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import PipelineError

# Letters, digits, ``_``, ``-`` and ``.``, not starting with ``.`` (hidden, ``..``) or ``-``
# (read as an option by shell tools); at most 100 characters, far below any file system's limit.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def check_name(name: object, field: str = "name") -> str:
    """Return ``name`` if it is a plain folder name, else say which field is wrong and why."""
    if not isinstance(name, str) or not _PLAIN_NAME.match(name):
        raise PipelineError(
            f"`{field}` {name!r}: must be a plain folder name (letters, digits, _ - and ., "
            "not starting with . or -, no slashes), e.g. cats_and_dogs_small"
        )
    return name


def child_path(root: str | os.PathLike[str], name: object, field: str = "name") -> Path:
    """``root / name`` once ``name`` is proven a plain folder name (never outside ``root``)."""
    return Path(root).expanduser() / check_name(name, field)


def check_writable_folder(folder: str | os.PathLike[str], field: str) -> Path:
    """Refuse a folder we could not write into, before any work: a file, or read-only.

    A folder that does not exist yet is fine when its nearest existing parent is writable.
    """
    folder = Path(folder).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise PipelineError(f"`{field}` {folder}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise PipelineError(
            f"`{field}` {folder}: {existing} is a file, not a folder; choose a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PipelineError(
            f"`{field}` {folder}: {existing} is read-only for this user; choose a writable folder"
        )
    return folder


def output_file(
    out: str | os.PathLike[str] | None, default_name: str, default_dir: str | os.PathLike[str],
    field: str = "out",
) -> Path:
    """Where to write one file: ``out``, or ``<out>/<default_name>`` when ``out`` is a folder.

    ``None`` gives ``<default_dir>/<default_name>``. An existing folder is written into, like
    ``cp photo.jpg folder/``, rather than refused: it cannot be what the user meant to replace.
    """
    if out is None:
        path = Path(default_dir) / default_name
    else:
        path = Path(out).expanduser()
        if path.is_dir():
            path = path / default_name
    check_writable_folder(path.parent, field)
    return path


def output_folder(out: str | os.PathLike[str], field: str = "out") -> Path:
    """A folder to write several files into: refuse an existing file or an unwritable place."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise PipelineError(f"`{field}` {path}: is a file; give a folder (it is created if needed)")
    return check_writable_folder(path, field)


def refuse_to_replace(paths: Iterable[Path], force: bool, field: str = "out") -> None:
    """Refuse, before any work, to write over files that are there already, unless ``force``;
    a folder standing where a file is to go is refused whatever ``force`` says."""
    existing = [Path(path) for path in paths if os.path.lexists(path)]
    for path in existing:
        if path.is_dir() and not path.is_symlink():
            raise PipelineError(f"`{field}` {path}: is a folder where a file is to be written; "
                                "choose another place")
    if existing and not force:
        names = ", ".join(path.name for path in existing)
        raise PipelineError(f"`{field}` {existing[0].parent}: already holds {names}; set `force` "
                            "to replace them, or choose another place")


def disk_error(error: OSError, where: str | os.PathLike[str]) -> PipelineError | None:
    """A one-line ``PipelineError`` for an ``OSError`` a user can fix (full disk, read-only,
    permission denied), or None for anything else, which stays a bug with its traceback."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EISDIR: "a folder stands where a file is to be written",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENAMETOOLONG: "the name is too long for the file system",
    }
    reason = reasons.get(error.errno)
    if reason is None:
        return None
    return PipelineError(f"{where}: {reason} ({error.filename or where}); free space or choose "
                         "another place, then run again")
