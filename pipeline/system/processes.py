"""The process that owns a run or a cache folder, and whether it has ended.

A run's record and a feature cache's work folder both name the process writing them (host and
pid), so that a second process neither writes over live work nor waits for ever on work whose
process was killed. Only this host's processes can be looked at; another host's count as alive.

A pid alone is not enough: after a reboot, or in a container started afresh, the recorded pid
may belong to another live process. Where Linux tells (``/proc``), the owner is also recorded
with its ``stamp``: the boot's id and the process's start time. A live pid whose stamp differs
is another process, and the owner has ended.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def current() -> tuple[str, int]:
    """This process: its host name and pid."""
    return socket.gethostname(), os.getpid()


def stamp(pid: int | None = None) -> str | None:
    """``<boot id>-<start time>`` of process ``pid`` (default: this one); None where the
    system does not tell (no ``/proc``) or the process is gone."""
    pid = os.getpid() if pid is None else pid
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (start time in clock ticks since boot) counts from after the command name,
    # which is in parentheses and may itself hold spaces.
    fields = stat.rpartition(")")[2].split()
    return f"{boot}-{fields[19]}" if len(fields) > 19 else None


def has_ended(host: object, pid: object, recorded_stamp: object = None) -> bool:
    """True when process ``pid`` of ``host`` is known to have ended.

    Another host's process cannot be looked at from here: not ended. On this host, a pid that
    is not a positive number names no process (a damaged owner file): ended, so it never blocks;
    a live pid whose ``stamp`` differs from ``recorded_stamp`` (when one was recorded) is
    another process that reuses the number: ended too.
    """
    if host != socket.gethostname():
        return False
    try:
        number = int(pid)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return True
    if number <= 0:
        return True  # os.kill(0, ...) would signal our own process group
    if number != os.getpid():
        try:
            os.kill(number, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # someone else's live process
    if isinstance(recorded_stamp, str) and recorded_stamp:
        now = stamp(number)
        return now is not None and now != recorded_stamp
    return False


def describe() -> str:
    """This process as a run record names it: ``host:pid``, with ``:stamp`` where known."""
    host, pid = current()
    own = stamp()
    return f"{host}:{pid}" + (f":{own}" if own else "")


def described_has_ended(process: str | None) -> bool:
    """``has_ended`` for a process named by ``describe`` (or an older ``host:pid``)."""
    host, _, rest = (process or "").partition(":")
    pid, _, recorded = rest.partition(":")
    return has_ended(host, pid, recorded or None)
