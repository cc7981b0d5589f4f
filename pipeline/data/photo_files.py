"""One photo's file in a dataset being built: the name it gets, and how it is written.

A name keeps the photo's where it can. ``unique_name`` makes one that differs from the others
of its folder (``a.png`` and ``a.jpg`` both become ``a.jpg``) and fits the destination's file
system: a longer one is cut and tagged with a hash of the whole (``<start>~<12 hex>.jpg``),
so the same photo gets the same name every time. Files are written straight to that name,
never through a temporary one: the dataset's folder is moved into place only when complete,
and a temporary name beside a 250-byte one would not fit in the file system's 255.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
from pathlib import Path

# Linux's ioctl that makes ``dst`` share ``src``'s blocks (btrfs, XFS, bcachefs, OCFS2).
_FICLONE = 0x40049409


def unique_name(name: str, used: set[str], name_max: int) -> str:
    """``name``, fitted to ``name_max`` bytes, made unlike (case aside) every name in ``used``.

    Only renames collide: ``a.png`` and ``a.jpg`` both become ``a.jpg``, and a file already
    named ``caf%E9.jpg`` meets the ``caf\\xe9.jpg`` stored under that name.
    """
    stem, suffix = os.path.splitext(name)
    candidate, n = _fitting(name, name_max), 1
    while candidate.lower() in used:
        n += 1
        candidate = _fitting(f"{stem}-{n}{suffix}", name_max)
    used.add(candidate.lower())
    return candidate


def _fitting(name: str, name_max: int) -> str:
    """``name``, or when longer than ``name_max`` bytes its start, ``~``, 12 hex digits of the
    whole name's sha256 and its extension: the same every time, and still telling."""
    encoded = name.encode("utf-8")
    if len(encoded) <= name_max:
        return name
    stem, suffix = os.path.splitext(name)
    tag = "~" + hashlib.sha256(encoded).hexdigest()[:12]
    room = max(name_max - len(tag) - len(suffix.encode("utf-8")), 1)
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore") + tag + suffix


def name_max_of(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` holds; 255 where unsaid."""
    try:
        return min(os.pathconf(folder, "PC_NAME_MAX"), 255)
    except (OSError, ValueError):
        return 255


# Errors that mean "no hard link here" (other file system, not allowed, not supported); a
# full disk or a read-only file system is not among them and stops the run.
_NO_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP,
                             errno.EOPNOTSUPP, errno.ENOSYS})


def try_hard_link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
    except OSError as error:
        if error.errno in _NO_LINK_ERRNOS:
            return False
        raise
    return True


def copy_file(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new file ``dst``; say how: ``reflink`` or ``copy``.

    A reflink shares the photo's blocks until either file is written (copy-on-write), so it
    is as cheap as a hard link but a separate file. The new file's mode follows the umask,
    not the source's (which may be read-only). ``dst`` is written directly, never replaced
    (``x`` mode): it lies in a dataset being built, which is moved into place only when
    complete, so a temporary name would add nothing, and beside a 250-byte name it would not
    fit in the file system's 255.
    """
    with open(src, "rb") as source, open(dst, "xb") as target:
        try:
            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
            return "reflink"
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise
    shutil.copyfile(src, dst)  # in-kernel copy (sendfile) into the file just made
    return "copy"
