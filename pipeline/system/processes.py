"""The process that owns a run or a cache folder, and whether it has ended.

A run's record and a feature cache's work folder both name the process writing them (host and
pid), so that a second process neither writes over live work nor waits for ever on work whose
process was killed. Only this host's processes can be looked at; another host's count as alive.

A pid alone is not enough: after a reboot, or in a container started afresh, the recorded pid
may belong to another live process. Where Linux tells (``/proc``), the owner is also recorded
with its ``stamp``: the boot's id and the process's start time. A live pid whose stamp differs
is another process, and the owner has ended.

Where neither tells (no ``/proc``, a record written before stamps, another host, a
container that shares no ``/proc`` with the one that died), a dead owner still looks alive.
The user, who knows it is dead, says so: within ``taking_over()`` (``--take-over`` on the
command line) an owner that looks alive is taken over like a dead one. Only its claim is
taken: what it finished stays, and the work is continued from there.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

TAKE_OVER_FIELD = "take_over"  # how messages name the override (the CLI: --take-over)
_taking_over = 0  # depth of ``taking_over()``: process-wide, as a command runs in one process


@contextlib.contextmanager
def taking_over() -> Iterator[None]:
    """Within it, runs and cache folders whose owner seems alive are taken over all the same.

    For the user who knows that owner is dead (its pid now another process's, after a reboot
    or in a container). Taking over keeps the owner's finished work (epochs, feature parts,
    views) and continues from it; were the owner in fact alive, both would write the same
    files, so the messages that refuse say to use it only for a process known to be dead.
    """
    global _taking_over
    _taking_over += 1
    try:
        yield
    finally:
        _taking_over -= 1


def is_taking_over() -> bool:
    """Whether this process was told to take over owners that look alive (``taking_over``)."""
    return _taking_over > 0


def take_over_hint(owner: str) -> str:
    """The end of a refusal: how to take over from ``owner`` when the user knows it is dead."""
    return (f"if {owner} is not running any more (its pid reused, after a reboot or in a "
            f"container), give `{TAKE_OVER_FIELD}` to take its work over and continue it")


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


def may_take_over(process: str | None) -> bool:
    """Whether the work of ``process`` (named by ``describe``) may be taken over: it ended,
    or the user said it did (``taking_over``)."""
    return is_taking_over() or described_has_ended(process)
