"""Who is making a run folder before its record exists: a ``.creating`` marker.

A run's record names the process training it, but a workflow makes the folder minutes before
it writes the record (features first). Without a marker, a second command given the same new
``run_name`` in that time was told the folder "is not a run folder", and two started at once
both trained into it. The marker is made exclusively (``O_EXCL``): one maker wins, the other is
told who is at work; a marker whose process ended is taken over (or one the user says is
dead: ``processes.taking_over``).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.system import processes

CREATOR = ".creating"  # the process making the folder, until its record names it


def claim_new(path: Path, name: str) -> None:
    """Mark ``path`` as being made by this process, or refuse if another one got there first
    (two commands given the same new ``run_name`` at once)."""
    marker = path / CREATOR
    earlier = creator(path)
    if earlier is not None and processes.may_take_over(earlier):
        marker.unlink(missing_ok=True)  # left by a process that died before its record
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise PipelineError(f"`run_name` {name!r}: {path} already exists, being made by "
                            f"process {creator(path)} right now; choose another `run_name`"
                            ) from None  # made at this very moment: no dead owner to name
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(processes.describe())


def creator(folder: Path) -> str | None:
    """The process named in ``folder``'s creator marker (None: no marker)."""
    try:
        return (folder / CREATOR).read_text(encoding="utf-8").strip() or "?"
    except OSError:
        return None
