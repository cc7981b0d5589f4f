"""Downloading Microsoft's PetImages (the full Kaggle cats-and-dogs photos), safely.

The archive is fetched with ``keras.utils.get_file`` and its sha256 checked, unpacked into a
hidden staging folder with every member's path checked first (a zip may name
``../../.bashrc``), cleaned of the files it is known to carry that are not usable photos
(zero-byte and corrupt JPEGs, ``Thumbs.db``), and only then renamed to ``data_root/PetImages``:
that folder existing means the extraction finished. The removed files were ours (we just
downloaded them), so they are deleted, and listed in the result.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.data.defaults import DATA_ROOT
from pipeline.data.images import check_image
from pipeline.data.layouts import IMAGE_EXTENSIONS, PETIMAGES_CLASS_FOLDERS
from pipeline.data.progress import StderrProgress
from pipeline.errors import PipelineError

PETIMAGES_URL = (
    "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
    "kagglecatsanddogs_5340.zip"
)
# sha256 of kagglecatsanddogs_5340.zip as published by gomlx/gomlx
# (examples/dogsvscats/dogsvscats.go, DownloadChecksum, which that project verifies as sha256).
# TensorFlow Datasets lists only the older kagglecatsanddogs_3367a.zip.
PETIMAGES_SHA256 = "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"
PETIMAGES_FOLDER = "PetImages"
DOWNLOADS_FOLDER = "downloads"

CONNECT_TIMEOUT_S = 5.0
# urlretrieve has no timeout of its own: a stalled transfer would hang forever.
READ_TIMEOUT_S = 60.0

_OFFLINE_HINT = (
    "download the Kaggle Dogs vs. Cats train/ folder yourself and run "
    "`data prepare` with `source` set to that folder"
)


@dataclass
class DownloadResult:
    """Where the photos are, and which files of the archive were dropped and why."""

    path: Path  # data_root/PetImages, with Cat/ and Dog/
    archive: Path | None  # the downloaded zip (kept, so `force` re-extracts without network)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (PetImages-relative, reason)
    counts: dict[str, int] = field(default_factory=dict)  # images per class folder
    already_present: bool = False

    def summary(self, max_removed: int = 20) -> str:
        """A few lines for the terminal: where the photos are and what was dropped."""
        counts = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        verb = "already present" if self.already_present else "extracted"
        lines = [f"PetImages {verb} in {self.path} ({counts})"]
        if self.removed:
            lines.append(f"  removed {len(self.removed)} unusable files:")
            lines.extend(f"    {name}: {reason}" for name, reason in self.removed[:max_removed])
            if len(self.removed) > max_removed:
                lines.append(f"    ... and {len(self.removed) - max_removed} more")
        if self.archive is not None:
            lines.append(f"  archive kept at {self.archive} (delete it to free space)")
        return "\n".join(lines)


def download_petimages(
    data_root: Path = DATA_ROOT,
    force: bool = False,
    *,
    origin: str = PETIMAGES_URL,
    file_hash: str | None = PETIMAGES_SHA256,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    progress: bool = True,
) -> DownloadResult:
    """Fetch and unpack PetImages into ``data_root/PetImages``; a no-op if it is already there.

    ``force`` extracts again over an existing ``PetImages`` (re-using the downloaded archive
    when its checksum still matches). ``origin`` may be any URL ``urllib`` opens, ``file://``
    included; without a network the call fails within ``connect_timeout`` seconds.
    """
    data_root = Path(data_root).expanduser()
    target = data_root / PETIMAGES_FOLDER
    if target.exists() and not force:
        if not _looks_like_petimages(target):
            raise PipelineError(
                f"{target}: exists but has no Cat/ and Dog/ folders; move it away or "
                "choose another `data_root`"
            )
        return DownloadResult(target, None, counts=_class_counts(target), already_present=True)
    if target.exists() and not _looks_like_petimages(target):  # refuse before 800 MB of download
        raise PipelineError(
            f"{target}: does not look like an extracted PetImages (Cat/ and Dog/ only); "
            "not replacing it even with `force`: move it away or choose another `data_root`"
        )

    archive_name = os.path.basename(urlsplit(origin).path) or "petimages.zip"
    archive = data_root / DOWNLOADS_FOLDER / archive_name
    if not archive.exists():
        check_reachable(origin, connect_timeout)
    archive = _fetch(origin, archive_name, file_hash, data_root)
    return extract_petimages(archive, data_root, force=force, progress=progress)


def check_reachable(origin: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in about ``timeout`` seconds, with what to do instead, when ``origin`` is offline."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = _resolve(host, port, timeout)
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise PipelineError(f"cannot reach {host} ({why}); {_OFFLINE_HINT}") from None


def _resolve(host: str, port: int, timeout: float) -> tuple[str, int]:
    # getaddrinfo ignores socket timeouts; a dead DNS server can stall it for half a minute.
    found: list = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if not found:
        raise TimeoutError(f"name lookup timed out after {timeout:.0f} s")
    if isinstance(found[0], OSError):
        raise found[0]
    family_address = found[0][0]
    return family_address[4][0], port


def _fetch(origin: str, archive_name: str, file_hash: str | None, data_root: Path) -> Path:
    from keras.utils import get_file  # here, not at the top: importing Keras takes seconds

    cache_dir = data_root.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)  # else get_file quietly falls back to /tmp
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(READ_TIMEOUT_S)
    try:
        path = get_file(
            fname=archive_name,
            origin=origin,
            file_hash=file_hash,
            cache_dir=str(cache_dir),
            cache_subdir=DOWNLOADS_FOLDER,
        )
    except ValueError as exc:  # get_file's checksum mismatch, after the download
        target = cache_dir / DOWNLOADS_FOLDER / archive_name
        target.unlink(missing_ok=True)  # ours, and useless: a retry must fetch it again
        raise PipelineError(
            f"downloading {origin}: the file's sha256 does not match {file_hash} (corrupt or "
            f"changed download); deleted it, try again or {_OFFLINE_HINT}"
        ) from exc
    except Exception as exc:  # get_file raises a bare Exception for every URL failure
        message = " ".join(str(exc).split())
        raise PipelineError(f"downloading {origin} failed ({message}); {_OFFLINE_HINT}") from exc
    finally:
        socket.setdefaulttimeout(previous)
    return Path(path)


def extract_petimages(
    zip_path: Path, data_root: Path, force: bool = False, progress: bool = False
) -> DownloadResult:
    """Unpack a PetImages archive into ``data_root/PetImages``, dropping unusable files."""
    zip_path, data_root = Path(zip_path), Path(data_root).expanduser()
    target = data_root / PETIMAGES_FOLDER
    if target.exists():
        if not force:
            raise PipelineError(f"{target}: already exists; set `force` to extract again")
        if not _looks_like_petimages(target):
            raise PipelineError(
                f"{target}: does not look like an extracted PetImages (Cat/ and Dog/ only); "
                "not deleting it even with `force`: move it away or choose another `data_root`"
            )
    staging = data_root / f".{PETIMAGES_FOLDER}-partial"
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted extraction: ours by its name
    try:
        safe_extract_zip(zip_path, staging)
        extracted = staging / PETIMAGES_FOLDER
        if not extracted.is_dir():
            raise PipelineError(
                f"{zip_path}: has no {PETIMAGES_FOLDER}/ folder; is it Microsoft's "
                "kagglecatsanddogs archive?"
            )
        removed = _drop_unusable(extracted, progress)
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return DownloadResult(target, zip_path, removed=removed, counts=_class_counts(target))


def safe_extract_zip(zip_path: Path, dest: Path) -> list[Path]:
    """Extract ``zip_path`` into ``dest``, refusing the whole archive if any member would escape.

    Every member is checked before the first byte is written: absolute names, drive letters,
    ``..`` components and symbolic links are refused. Returns the files written.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PipelineError(
            f"{zip_path}: not a readable zip archive ({exc}); delete it and download again"
        ) from None
    with archive:
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        plan = [(info, _member_target(info, root, zip_path)) for info in archive.infolist()]
        written = []
        try:
            for info, target in plan:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                written.append(target)
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
            raise PipelineError(
                f"{zip_path}: damaged archive ({exc}); delete it and download again"
            ) from None
    return written


def _member_target(info: zipfile.ZipInfo, root: Path, zip_path: Path) -> Path:
    name = info.filename.replace("\\", "/")  # zips made on Windows may use backslashes

    def refuse(why: str) -> PipelineError:
        return PipelineError(
            f"{zip_path}: member {info.filename!r} {why}; refusing to extract this archive"
        )

    if stat.S_ISLNK(info.external_attr >> 16):
        raise refuse("is a symbolic link")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise refuse("has an absolute path")
    if ".." in name.split("/"):
        raise refuse(f"would be written outside {root} ('..')")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise refuse(f"would be written outside {root}")
    return target


def _drop_unusable(petimages: Path, progress: bool) -> list[tuple[str, str]]:
    files = [
        path
        for folder in sorted(petimages.iterdir())
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.is_file()
    ]
    removed = []
    bar = StderrProgress("checking images", len(files), enabled=progress)
    try:
        for path in files:
            reason = _unusable_reason(path)
            if reason is not None:
                path.unlink()
                removed.append((path.relative_to(petimages).as_posix(), reason))
            bar.add(1)
    finally:
        bar.close()
    return removed


def _unusable_reason(path: Path) -> str | None:
    if path.name.startswith("."):
        return "hidden file"
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"not an image file ({path.suffix or 'no extension'})"
    check = check_image(path)
    return None if check.ok else check.reason


def _looks_like_petimages(folder: Path) -> bool:
    if not folder.is_dir() or folder.is_symlink():
        return False
    names = {entry.name for entry in folder.iterdir()}
    return names == PETIMAGES_CLASS_FOLDERS


def _class_counts(petimages: Path) -> dict[str, int]:
    return {
        folder.name: sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        for folder in sorted(petimages.iterdir())
        if folder.is_dir()
    }
