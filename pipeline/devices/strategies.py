"""The names of the distribution strategies, and the one a workflow is running under.

Light on purpose (no TensorFlow import): the command line takes its ``--strategy`` choices
from here, and the run folder (``pipeline.runs.folder``) asks here where this process may write,
both without starting TensorFlow. ``pipeline.devices.distribute`` resolves a name into a strategy;
``pipeline.training.context`` makes it the active one for the length of a workflow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

STRATEGIES = ("auto", "one", "mirrored", "multiworker")



class Distribution(Protocol):
    """What the lower layers ask of the active distribution; ``pipeline.devices.distribute``'s
    ``Distribution`` is the one implementation (described here so this module, which the
    command line imports, needs neither TensorFlow nor that module)."""

    kind: str
    replicas: int
    strategy: Any

    def output_dir(self, path: str | os.PathLike[str]) -> Path: ...


_ACTIVE: ContextVar[Distribution | None] = ContextVar("distribution", default=None)


def active_distribution() -> Distribution | None:
    """The distribution the running workflow trains under; None outside any workflow."""
    return _ACTIVE.get()


@contextlib.contextmanager
def activated(distribution: Distribution) -> Iterator[Distribution]:
    """Make ``distribution`` the active one until the block ends (then the previous one)."""
    token = _ACTIVE.set(distribution)
    try:
        yield distribution
    finally:
        _ACTIVE.reset(token)


def output_dir(path: str | os.PathLike[str]) -> Path:
    """Where to write what belongs in ``path``: ``path`` itself, except on a cluster's
    non-chief worker, which gets a throw-away directory (only the chief writes results)."""
    active = _ACTIVE.get()
    return Path(path) if active is None else active.output_dir(path)
