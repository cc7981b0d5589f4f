"""How a stop reaches the exit status: Ctrl-C, SIGTERM, and a training run that failed.

One rule for every command: a stop the user asked for (Ctrl-C: SIGINT, a scheduler's or
``kill``'s SIGTERM) ends the command with 130 or 143, the shell's own codes for those
signals. SIGTERM is turned into ``Terminated``, a ``KeyboardInterrupt``, so every place that
stops cleanly on Ctrl-C (training keeps its epochs, the feature cache its finished parts)
stops the same way on SIGTERM; Python's default would end the process on the spot.

Training absorbs a stop (or a failure such as a non-finite loss) so that the workflow still
finishes the run's files (an extract run joins its head to the conv base); it ``defer``s the
stop here, and the command line raises it once the command has returned. A Python user gets
the run back, its record saying ``interrupted`` or ``failed``.

A stop is also remembered when it arrives, because library code can swallow the exception:
Keras' ``save_model`` decides where to hold the weights it writes (a memory check, then
memory or a temporary file) inside a bare ``except:``, so a signal landing there vanished and
training ran on to its last epoch (seen as a rare ``exit 0`` after SIGTERM). Training and
every batch loop call ``raise_swallowed`` at safe points, so such a stop still stops.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

SIGINT_STATUS = 128 + signal.SIGINT  # 130, as a shell reports a process ended by Ctrl-C
SIGTERM_STATUS = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (caught by the same handlers)."""


def exit_status(stop: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return SIGTERM_STATUS if isinstance(stop, Terminated) else SIGINT_STATUS


def describe(stop: KeyboardInterrupt) -> str:
    """``SIGTERM`` or ``Ctrl-C``, for a run's record and messages."""
    return "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"


_received: list[KeyboardInterrupt] = []  # stops signalled and not yet handled


def _raise_stop(signum: int, frame: object) -> None:
    stop = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    _received.append(stop)
    raise stop


@contextlib.contextmanager
def signals_stop() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` and Ctrl-C ``KeyboardInterrupt``, and
    each is remembered until handled (main thread only; the previous handlers come back after).

    A SIGINT that was ignored when the process started (``nohup``, a background job) stays
    ignored. Nested in another (the command line around ``run_chapter``), it leaves the outer
    one in charge, so a stop remembered inside is still there after it.
    """
    nested = signal.getsignal(signal.SIGTERM) is _raise_stop
    if nested or threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_stop)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


def handled() -> None:
    """The stop in flight was caught where it is dealt with: nothing is left to raise again."""
    _received.clear()


def raise_swallowed() -> None:
    """Raise a stop that was signalled but never reached a handler (some library code
    swallowed it), once; nothing happens when there is none."""
    if _received:
        stop = _received[0]
        _received.clear()
        raise type(stop)()


@contextlib.contextmanager
def saying_what_is_kept(kept: Callable[[], str]) -> Iterator[None]:
    """On a stop inside the block, say on stderr what is kept (``kept()``, e.g. "2 of 8 views
    kept in ...") and that the same command goes on from there; the stop then carries on."""
    try:
        yield
    except KeyboardInterrupt as stop:
        print(f"\nInterrupted ({describe(stop)}): {kept()}; the same command continues from "
              "there.", file=sys.stderr)
        raise


_deferred: list[BaseException] = []


def defer(stop: BaseException) -> None:
    """Remember a stop (or failure) absorbed to finish a run's files; the CLI raises it later."""
    _deferred.append(stop)


def take_deferred() -> BaseException | None:
    """The first deferred stop, forgetting all of them (None when there is none)."""
    first = _deferred[0] if _deferred else None
    _deferred.clear()
    return first


def raise_deferred() -> None:
    """Raise the deferred stop now, if any: what a caller running several steps (a pipeline of
    runs) does between steps, so that a stopped step is not followed by the next one."""
    stop = take_deferred()
    if stop is not None:
        raise stop
