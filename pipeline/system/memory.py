"""How much memory a new allocation can have: the one place that reads it from the OS."""

from __future__ import annotations

FALLBACK_BYTES = 4 << 30  # where the OS does not say: a conservative 4 GiB


def available_memory_bytes() -> int:
    """Memory the OS says is available now (Linux ``MemAvailable``), else ``FALLBACK_BYTES``."""
    available = reported_available_bytes()
    return FALLBACK_BYTES if available is None else available


def reported_available_bytes() -> int | None:
    """Linux's ``MemAvailable`` in bytes; None where the OS does not say (callers choose)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
