"""A one-line progress bar on stderr, for the long loops of preparing and downloading data."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class StderrProgress:
    """A one-line progress bar on stderr (stdout stays free for the summary), or nothing."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream: TextIO | None = None):
        self.label, self.total, self.enabled = label, max(total, 0), enabled and total > 0
        self.stream = stream or sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = -1  # the count last shown, so close() does not repeat the final line

    def add(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._last_draw = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled:
            if self._drawn != self.done:
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def _draw(self, now: float) -> None:
        width = 30
        filled = int(width * min(self.done, self.total) / self.total)
        self._drawn = self.done
        elapsed = now - self._start
        rate = f"{self.done / elapsed:.0f}/s" if elapsed > 0 else ""
        self.stream.write(
            f"\r{self.label}: {self.done}/{self.total} [{'=' * filled}{'.' * (width - filled)}]"
            f" {elapsed:.0f}s {rate}"
        )
        self.stream.flush()
