"""A quiet console: TensorFlow's start-up lines kept off stderr, real errors still shown.

TensorFlow's C++ runtime writes a few lines to file descriptor 2 whenever it loads, before
its logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795486773.019466 24769 port.cc:153] oneDNN custom operations are on ...
    E0000 00:00:1795486776.660017 24769 cuda_platform.cc:52] failed call to cuInit ...

``quiet_startup_lines`` puts a pipe in front of descriptor 2 and a thread that copies
everything through except those lines: the absl banner, absl informational and warning
lines (``I``/``W`` + date), the CPU-instructions note, and the known harmless "no GPU"
errors. Any other error (``E``/``F`` lines, Python tracebacks, our own messages) passes
unchanged. ``VERBOSE_VARIABLE=1`` (or the CLI's ``--verbose``) leaves stderr alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

VERBOSE_VARIABLE = "SMALL_DATA_VERBOSE"

# Lines TensorFlow writes while it starts, none of which asks the user to do anything.
NOISE = re.compile(
    rb"^(?:"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\]"  # absl INFO / WARNING (I0000 00:00:17954.. pid f.cc:1])
    rb"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] (?:failed call to cuInit"
    rb"|Unable to register cu(?:DNN|FFT|BLAS) factory)"  # no GPU here: not an error for us
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|oneDNN custom operations are on"
    rb")"
)


def is_noise(line: bytes) -> bool:
    """Whether ``line`` (one line of stderr, bytes) is a TensorFlow start-up line to drop."""
    return NOISE.match(line.lstrip(b"\r")) is not None


def verbose_requested() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


_installed: _StderrFilter | None = None


def quiet_startup_lines() -> bool:
    """Filter TensorFlow's start-up lines out of this process's stderr; True if installed.

    Acts only on the real stderr (descriptor 2 behind ``sys.stderr``): under a test runner
    that captured ``sys.stderr`` in memory, nothing is changed. Idempotent.
    """
    global _installed
    if _installed is not None:
        return True
    if verbose_requested() or sys.stderr is not sys.__stderr__:
        return False
    try:
        if sys.stderr.fileno() != 2:
            return False
    except (AttributeError, OSError, ValueError):
        return False
    _installed = _StderrFilter()
    atexit.register(_installed.close)
    return True


class _StderrFilter:
    """Descriptor 2 -> pipe -> thread -> the original stderr, minus ``NOISE`` lines."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.target = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.read = read
        self.thread = threading.Thread(target=self._copy, name="stderr-filter", daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_noise(line))
            if kept:
                self._write(kept)
        if pending and not is_noise(pending):
            self._write(pending)
        os.close(self.read)

    def _write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.target, data):]
            except OSError:
                return

    def close(self) -> None:
        """Give descriptor 2 back and let the thread copy what is left (at exit)."""
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self.target, 2)  # the pipe's last write end closes: the thread sees its end
        self.thread.join(timeout=5)
