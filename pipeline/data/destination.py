"""Where a dataset is written: built beside its final place, moved in only when complete.

``data prepare`` and ``data synth`` write into a hidden sibling folder
(``<data_root>/.<name>.partial-<token>``) and rename it to ``<data_root>/<name>`` after the
manifest is written. So a dataset folder is always whole: a full disk, a refused file or
Ctrl-C removes the partial folder and leaves any older dataset of that name as it was.

An older dataset being replaced steps aside to ``.<name>.old-<token>`` for the two renames
(Ctrl-C and SIGTERM are held meanwhile, so a stop never lands between them) and is deleted
once the new one is in place. From then on the run has succeeded, whatever happens: a stop
while the old one is deleted is reported with the new dataset, not as a failure.

A build names its process in ``.<name>.owner-<token>`` (``processes.describe``), made before
its folders and removed after them. A run killed outright (SIGKILL, a power cut) leaves them
behind; the next run clears what such a run left, once its process has ended, and nothing
else: a live run's folders, another host's, or folders named like ours without an owner
record are left alone (the last are named in the summary). A dataset killed between the two
renames is put back in its place.

Replacing an older dataset (``force``) deletes only what can be proven ours (see
``ownership.py``): anything else there (``precious.txt``, a stray photo, a folder of notes)
makes us refuse and name it, and nothing is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.manifest import MANIFEST_NAME
from pipeline.data.ownership import (
    foreign_entries,
    is_whole,
    our_manifest,
    remove_dataset,
)
from pipeline.errors import PipelineError
from pipeline.system import interrupts, processes
from pipeline.system.atomic import replace_via_aside
from pipeline.system.paths import check_writable_folder, disk_error

# What a build leaves beside the dataset until it is done (see the module's docstring).
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old|owner)-(?P<token>[0-9a-f]{8})$")
# Stops held while folders are renamed; they arrive as soon as the renames are done.
_HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
# An owner record is written the moment it is made; one still empty after this long was
# made by a process killed in between.
_EMPTY_OWNER_GRACE_S = 60.0
_ACTIVE_TOKENS: set[str] = set()  # builds of this process that are still going on


def check_destination(dataset_dir: Path, force: bool) -> bool:
    """Say whether ``dataset_dir`` holds an old dataset to replace; refuse if it may not be.

    Raises before anything is written, so a refused run changes nothing.
    """
    dataset_dir = Path(dataset_dir)
    if dataset_dir.is_symlink():
        raise PipelineError(
            f"{dataset_dir}: is a symbolic link; choose another `name` or remove the link"
        )
    if not dataset_dir.exists():
        return False
    if not dataset_dir.is_dir():
        raise PipelineError(f"{dataset_dir}: is a file; choose another `name` or remove it")
    if not any(dataset_dir.iterdir()):
        return False
    if not force:
        raise PipelineError(
            f"{dataset_dir}: already exists and is not empty; set `force` to replace it "
            "or choose another `name`"
        )
    if our_manifest(dataset_dir) is None:
        raise PipelineError(
            f"{dataset_dir}: has no {MANIFEST_NAME} of a prepared dataset, so nothing proves "
            "this package wrote it; not deleting anything even with `force`: move it away, or "
            "choose another `name`"
        )
    foreign = foreign_entries(dataset_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise PipelineError(
            f"{dataset_dir}: holds {shown}, which this package did not write; not deleting "
            "anything even with `force`: move those away, or choose another `name`"
        )
    return True


@dataclass(frozen=True)
class _Build:
    """One build's entries beside the dataset: owner record, partial folder, old dataset."""

    root: Path
    name: str
    token: str

    def _entry(self, kind: str) -> Path:
        return self.root / f".{self.name}.{kind}-{self.token}"

    @property
    def owner(self) -> Path:
        return self._entry("owner")

    @property
    def partial(self) -> Path:
        return self._entry("partial")

    @property
    def old(self) -> Path:
        return self._entry("old")

    @classmethod
    def start(cls, root: Path, name: str) -> _Build:
        """Record this process as the owner, then make the empty partial folder."""
        for _ in range(100):
            build = cls(root, name, secrets.token_hex(4))
            try:
                fd = os.open(build.owner, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            _ACTIVE_TOKENS.add(build.token)
            try:
                try:
                    os.write(fd, f"{processes.describe()}\n".encode())
                finally:
                    os.close(fd)
                build.partial.mkdir()
            except BaseException:
                build.finish()
                raise
            return build
        raise FileExistsError(f"{root}: no free name for a build of {name}")

    def abandon(self) -> None:
        """Remove the partial folder, then the owner record: the build failed or stopped."""
        shutil.rmtree(self.partial, ignore_errors=True)
        self.finish()

    def finish(self) -> None:
        """The owner record goes last: until then, whatever is left is known to be ours."""
        with contextlib.suppress(FileNotFoundError):
            self.owner.unlink()
        self.release()

    def release(self) -> None:
        """This process no longer works on the build: a later call may clear what is left."""
        _ACTIVE_TOKENS.discard(self.token)

    def has_ended(self) -> bool:
        """Whether the owner is known to be gone (this host, process ended or never written)."""
        try:
            text = self.owner.read_text(encoding="utf-8", errors="replace").strip()
            if not text:
                return time.time() - self.owner.stat().st_mtime > _EMPTY_OWNER_GRACE_S
        except OSError:
            return False  # gone meanwhile (someone else cleared it) or unreadable: not ours
        if text == processes.describe():
            return self.token not in _ACTIVE_TOKENS
        return processes.described_has_ended(text)

    def clear(self) -> list[str]:
        """Undo what this ended build left: put a dataset moved aside back, remove the rest."""
        notes: list[str] = []
        target = self.root / self.name
        if _is_folder(self.old) and not os.path.lexists(target) and is_whole(self.old):
            os.replace(self.old, target)  # killed between its two renames
            notes.append(f"put back {target}: a run that ended half-way through replacing it "
                         f"had left it in {self.old}")
        if _is_folder(self.partial):
            shutil.rmtree(self.partial, ignore_errors=True)
            notes.append(f"removed {self.partial}, left by a run that ended before finishing")
        if _is_folder(self.old):
            kept = _remove_aside(self.old)
            if kept:
                return [*notes, kept]  # the owner record stays: it names the folder's origin
            notes.append(f"removed {self.old}, a replaced dataset that a run which ended had "
                         "not finished deleting")
        self.finish()
        return notes


def clear_leftovers(root: Path) -> list[str]:
    """Clear what builds whose process ended left in ``root``; say what was done, one line each.

    Only entries named like ours are looked at. A live build's and another host's are left
    alone without a word; folders named like ours but without an owner record (an older
    version's, or not this package's) are left alone and named.
    """
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return []  # not there yet, or not readable: nothing of ours to clear
    groups: dict[tuple[str, str], set[str]] = {}
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match:
            groups.setdefault((match["name"], match["token"]), set()).add(match["kind"])
    notes: list[str] = []
    for (name, token), kinds in sorted(groups.items()):
        build = _Build(Path(root), name, token)
        if "owner" not in kinds:
            folders = ", ".join(str(build._entry(kind)) for kind in sorted(kinds))
            notes.append(f"left alone: {folders}: no owner record (an older version or another "
                         "program made it); delete it yourself once no `data prepare` runs")
        elif build.has_ended():
            try:
                notes.extend(build.clear())
            except OSError as error:
                notes.append(f"could not clear {build.partial} or {build.old} ({error.strerror}); "
                             "delete them yourself once no `data prepare` runs")
    return notes


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove_aside(old: Path) -> str | None:
    """Delete a replaced dataset; None when done, else the line saying why it was kept."""
    try:
        remove_dataset(old)
    except PipelineError:
        return (f"kept {old}, the dataset replaced: it gained files this package did not write; "
                "look at it and delete it yourself")
    except OSError as error:
        if not old.exists():
            return None  # another run finished deleting it meanwhile
        return f"kept {old}, the dataset replaced: {error.strerror}; delete it yourself"
    return None


@contextlib.contextmanager
def building(
    dataset_dir: Path, force: bool, root_field: str = "data_root",
    notes: list[str] | None = None,
) -> Iterator[Path]:
    """Yield an empty partial folder to build ``dataset_dir`` in; move it into place on success.

    First clears what ended runs left beside it (``clear_leftovers``), then refuses before
    yielding (``check_destination``, an unwritable root). On any error the partial folder is
    removed and the old dataset, if any, is untouched; a full disk or a read-only file system
    becomes one ``PipelineError`` line. On success an old dataset is moved aside, the new one
    moved in, and the old one deleted. ``notes`` gets a line for each thing worth telling the
    user that is no failure (leftovers cleared, a stop after the new dataset was in place).
    """
    dataset_dir = Path(dataset_dir)
    notes = [] if notes is None else notes
    root = check_writable_folder(dataset_dir.parent, root_field)
    notes.extend(clear_leftovers(root))
    replacing = check_destination(dataset_dir, force)
    try:
        root.mkdir(parents=True, exist_ok=True)
        build = _Build.start(root, dataset_dir.name)
    except OSError as error:
        raise disk_error(error, root) or error from None
    try:
        yield build.partial
    except BaseException as error:
        build.abandon()
        if isinstance(error, OSError):
            friendly = disk_error(error, dataset_dir)
            if friendly is not None:
                raise friendly from None
        raise
    _place(build, dataset_dir, replacing, notes)


def _place(build: _Build, dataset_dir: Path, replacing: bool, notes: list[str]) -> None:
    """Move the finished build into place, then delete the dataset it replaced.

    Once the new dataset is in place the run has succeeded: a stop while the old one is
    deleted leaves the rest of it (with its owner record) for the next run, and says so.
    """
    placed = False
    try:
        with _signals_held():
            try:
                if replacing:  # the old dataset is put back if the new one cannot move in
                    replace_via_aside(build.partial, dataset_dir, build.old)
                else:  # ``os.replace`` onto an empty folder replaces it, onto others it fails
                    os.replace(build.partial, dataset_dir)
            except OSError as error:
                build.abandon()
                raise _move_error(error, dataset_dir) from None
            placed = True
        kept = _remove_aside(build.old) if replacing else None
        if kept:
            notes.append(kept)
            build.release()
        else:
            build.finish()
    except KeyboardInterrupt as stop:
        if not placed:
            build.abandon()
            raise
        interrupts.handled()  # the stop came too late to undo anything: it is reported here
        build.release()
        notes.append(f"stopped ({interrupts.describe(stop)}) while deleting the dataset it "
                     f"replaced; the new one is complete, and the next `data prepare` deletes "
                     f"what is left of the old one in {build.old}")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP for the block: a stop between the two renames of a
    replacement would leave neither dataset in its place. Held signals arrive after it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _move_error(error: OSError, dataset_dir: Path) -> PipelineError | OSError:
    if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
        return PipelineError(
            f"{dataset_dir}: another process wrote a dataset there while this one was being "
            "prepared; it was left as it is: run again, with `force` to replace it"
        )
    return disk_error(error, dataset_dir) or error
