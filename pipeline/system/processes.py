"""The process that owns a run or a cache folder, and whether it has ended.

A run's record and a feature cache's work folder both name the process writing them (host and
pid), so that a second process neither writes over live work nor waits for ever on work whose
process was killed. Only this host's processes can be looked at; another host's count as alive.
"""

from __future__ import annotations

import os
import socket


def current() -> tuple[str, int]:
    """This process: its host name and pid."""
    return socket.gethostname(), os.getpid()


def has_ended(host: object, pid: object) -> bool:
    """True when process ``pid`` of ``host`` is known to have ended.

    Another host's process cannot be looked at from here: not ended. On this host, a pid that
    is not a positive number names no process (a damaged owner file): ended, so it never blocks.
    """
    if host != socket.gethostname():
        return False
    try:
        number = int(pid)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return True
    if number <= 0:
        return True  # os.kill(0, ...) would signal our own process group
    if number == os.getpid():
        return False
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's live process
    return False
