"""Where features are computed before they are published: a resumable work folder per entry.

``<cache>/.<entry>.parts/`` holds ``features.npy`` and ``labels.npy`` (headers stating the
final row count, rows appended with ordinary writes), ``progress.json`` (how many rows are
safely on disk: written after every part of ``part_rows`` rows, once both files are synced)
and ``owner.json`` (the process computing it now). An interrupted run leaves the folder;
the next run for the same entry cuts the files back to the last complete part and goes on
from there. The cache publishes the folder by renaming it into place.

Left-overs: a work folder whose owner is dead and that nobody touched for
``RESUME_SECONDS`` (3 days) will not be resumed and is removed, as is a temporary folder
of the earlier format (``.<entry>-xxxxxxxx``, made by ``tempfile.mkdtemp``, no owner file)
untouched for ``LEGACY_SECONDS`` (an hour). A folder whose owner is alive on this machine
is never touched, nor is anything not named like an entry of ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import PipelineError
from pipeline.system import interrupts, processes
from pipeline.system.atomic import remove_path, write_json
from pipeline.system.npy_files import NpyAppender

WORK_SUFFIX = ".parts"
PROGRESS_FILE = "progress.json"
OWNER_FILE = "owner.json"
PART_BYTES = 32 << 20  # a checkpoint about every 32 MiB of features
MAX_PART_ROWS = 512
RESUME_SECONDS = 3 * 24 * 3600
LEGACY_SECONDS = 3600

_ENTRY = r"[A-Za-z0-9_.+-]+-\d+px-[A-Za-z0-9_]+-[0-9a-f]{16}"
_WORK = re.compile(rf"^\.{_ENTRY}{re.escape(WORK_SUFFIX)}$")
_LEGACY = re.compile(rf"^\.{_ENTRY}-[a-z0-9_]{{8}}$")


def part_rows(feature_row_bytes: int) -> int:
    """Rows per part: up to ``MAX_PART_ROWS``, fewer for large feature maps (about 32 MiB)."""
    return max(1, min(MAX_PART_ROWS, PART_BYTES // max(1, feature_row_bytes)))


def work_folder(entry: Path) -> Path:
    return entry.parent / f".{entry.name}{WORK_SUFFIX}"


class PartWriter:
    """What a ``fill`` writes into: ``append(features, labels)`` batch after batch.

    ``start`` rows were written by an earlier, interrupted run: the fill skips that many
    inputs and appends from there. Every ``part_rows`` rows both files are synced and the
    progress is recorded, so an interrupt loses at most one part.
    """

    def __init__(self, folder: Path, plan: dict[str, Any], start: int) -> None:
        self.folder, self.plan, self.start = folder, plan, start
        self.kept = start  # rows safely on disk: what a stop now would keep
        self.count = int(plan["count"])
        self.part_rows = int(plan["part_rows"])
        self.features = NpyAppender(folder / "features.npy", (self.count, *plan["feature_shape"]),
                                    plan["feature_dtype"], start)
        self.labels = NpyAppender(folder / "labels.npy", (self.count, *plan["label_shape"]),
                                  plan["label_dtype"], start)

    @property
    def rows(self) -> int:
        return self.features.rows

    def saying_what_a_stop_keeps(self) -> contextlib.AbstractContextManager[None]:
        """Within it, a Ctrl-C or SIGTERM says how many rows are kept, and where."""
        return interrupts.saying_what_is_kept(
            lambda: f"features of {self.kept} of {self.count} images kept in {self.folder}")

    def append(self, features: np.ndarray, labels: np.ndarray) -> None:
        """Write a batch of rows after those already written."""
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
        if self.rows + len(features) > self.count:
            raise PipelineError(f"more inputs than the {self.count} expected; the data changed")
        labels = np.asarray(labels).reshape((len(labels), *self.labels.shape[1:]))
        done = 0
        while done < len(features):
            room = self.part_rows - self.rows % self.part_rows
            take = min(room, len(features) - done)
            self.features.append(features[done:done + take])
            self.labels.append(labels[done:done + take])
            done += take
            if self.rows % self.part_rows == 0 or self.rows == self.count:
                self._checkpoint()

    def _checkpoint(self) -> None:
        self.features.sync()
        self.labels.sync()
        write_json(self.folder / PROGRESS_FILE, {"plan": self.plan, "rows": self.rows})
        self.kept = self.rows

    def finish(self) -> dict[str, str]:
        """Close both files; their sha256 by file name. Raises if rows are missing."""
        self.close()
        if self.rows != self.count:
            raise PipelineError(f"{self.rows} inputs where {self.count} were expected; "
                                "the data changed")
        return {"features.npy": self.features.sha256, "labels.npy": self.labels.sha256}

    def close(self) -> None:
        self.features.close()
        self.labels.close()


def resume_point(folder: Path, plan: dict[str, Any]) -> int:
    """Rows an earlier run of the same ``plan`` left complete in ``folder``; 0 starts afresh."""
    try:
        progress = json.loads((folder / PROGRESS_FILE).read_text(encoding="utf-8"))
        rows = int(progress["rows"]) if progress.get("plan") == plan else 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        rows = 0
    needed = [folder / "features.npy", folder / "labels.npy"]
    if rows and all(path.is_file() for path in needed):
        return rows
    for path in folder.iterdir():  # another plan's or a torn start: begin again
        if path.name != OWNER_FILE:
            remove_path(path)
    return 0


class Busy(PipelineError):
    """Another live process owns the folder: its work is left alone, nothing is removed."""


@contextlib.contextmanager
def claimed(folder: Path, what: str = "these features"):
    """Own ``folder`` (creating it) while computing ``what``; refuse (``Busy``) if a live
    process owns it, unless the user says it is dead (``processes.taking_over``): then its
    claim is taken, and what it finished (complete parts, views) is kept and continued.

    The owner file appears whole or not at all (written aside, then hard-linked into place,
    which fails if it exists), so a second process never reads a half-written owner, takes
    it for a dead one and computes over live work.
    """
    folder.mkdir(parents=True, exist_ok=True)
    owner = folder / OWNER_FILE
    host, pid = processes.current()
    me = {"pid": pid, "host": host, "stamp": processes.stamp()}
    mine = folder.parent / f".{folder.name}-owner-{pid}.tmp"  # outside: never swept with it
    mine.write_text(json.dumps(me), encoding="utf-8")
    try:
        for _ in range(3):
            try:
                os.link(mine, owner)
                break
            except FileExistsError:
                other = _read_owner(owner)
                if other is not None and _alive(other) and not processes.is_taking_over():
                    who = f"process {other.get('pid')} on {other.get('host')}"
                    raise Busy(f"{folder}: {who} is computing {what} now; wait for it to "
                               "finish, then run this again; "
                               + processes.take_over_hint(who)) from None
                with contextlib.suppress(FileNotFoundError):
                    owner.unlink()  # its owner died (or the user says so): take it over
        else:
            raise Busy(f"{folder}: cannot take it over from another process; try again")
    finally:
        mine.unlink(missing_ok=True)
    try:
        yield folder
    finally:
        if _read_owner(owner) == me:
            with contextlib.suppress(FileNotFoundError):
                owner.unlink()


def release_for_publishing(folder: Path) -> None:
    """Remove the bookkeeping files, leaving only what a published entry holds."""
    for name in (PROGRESS_FILE, OWNER_FILE):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()


def remove_leftovers(root: Path, now: float | None = None) -> list[Path]:
    """Remove work folders nobody will resume and old-format temporary folders; say so."""
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = [path for path in root.iterdir() if path.name.startswith(".")]
    except FileNotFoundError:
        return removed
    for path in candidates:
        if not path.is_dir() or path.is_symlink():
            continue
        if _WORK.match(path.name):
            owner = _read_owner(path / OWNER_FILE)
            stale = (owner is None or not _alive(owner)) and \
                now - _last_touched(path) > RESUME_SECONDS
        elif _LEGACY.match(path.name):
            stale = now - _last_touched(path) > LEGACY_SECONDS
        else:
            continue
        if stale:
            size = _size(path)
            remove_path(path)
            removed.append(path)
            print(f"removed left-over partial features {path} ({size / 2**20:.1f} MB) from an "
                  "earlier run that did not finish", file=sys.stderr)
    return removed


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the process named in ``owner`` may still be writing (unknown hosts: yes)."""
    return not processes.has_ended(owner.get("host"), owner.get("pid"), owner.get("stamp"))


def _last_touched(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            times.append(path.stat().st_mtime)
    return max(times)


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total

