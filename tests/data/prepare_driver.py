"""Runs ``data prepare`` (the command line's own ``data`` group) in a process of its own, and
stops it with a real signal at one chosen step, the way a user's Ctrl-C, ``kill`` or a power
cut would land there. Not a test module: the fault tests start it with ``subprocess``.

    python prepare_driver.py <fault> <data prepare arguments...>
    python prepare_driver.py <fault> run <run arguments...>

The fault names the step and the signal. ``pause-while-writing`` stops the process
(SIGSTOP) instead: it stays alive, holding its half-built dataset, until the test kills it.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys

from pipeline.commands.data import data
from pipeline.data import destination, prepare

SIGNALS = {"int": signal.SIGINT, "term": signal.SIGTERM, "kill": signal.SIGKILL,
           "stop": signal.SIGSTOP}


def _signal_self(name: str) -> None:
    os.kill(os.getpid(), SIGNALS[name])


def on_third_copy(name: str) -> None:
    """Signal while photos are copied into the hidden build folder (the third one)."""
    original, calls = prepare.copy_file, []

    def copy(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            _signal_self(name)
        return original(src, dst)

    prepare.copy_file = copy


def between_renames() -> None:
    """SIGKILL after the old dataset was moved aside, before the new one is moved in."""
    original = os.replace

    def replace(src, dst, *args, **kwargs):
        if ".partial-" in pathlib.Path(src).name:
            _signal_self("kill")
        return original(src, dst, *args, **kwargs)

    os.replace = replace


def while_deleting_old(name: str) -> None:
    """Signal in the middle of deleting the replaced dataset (after 3 of its files)."""
    original, calls = pathlib.Path.unlink, []

    def unlink(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if ".old-" in str(self):
            calls.append(self)
            if len(calls) == 3:
                _signal_self(name)
        return result

    pathlib.Path.unlink = unlink


def before_deleting_old() -> None:
    """SIGKILL once the new dataset is in place, before the old one is deleted."""
    original = destination.remove_dataset

    def remove(folder):
        _signal_self("kill")
        return original(folder)

    destination.remove_dataset = remove


def after_placing(name: str) -> None:
    """Signal once the new dataset is in place and the old one deleted: in the few steps
    before ``prepare_dataset`` returns its result."""
    original = destination._place

    def place(*args, **kwargs):
        original(*args, **kwargs)
        _signal_self(name)

    destination._place = place


FAULTS = {
    "int-while-writing": lambda: on_third_copy("int"),
    "kill-while-writing": lambda: on_third_copy("kill"),
    "pause-while-writing": lambda: on_third_copy("stop"),
    "kill-between-renames": between_renames,
    "kill-before-deleting-old": before_deleting_old,
    "int-while-deleting-old": lambda: while_deleting_old("int"),
    "term-while-deleting-old": lambda: while_deleting_old("term"),
    "int-after-placing": lambda: after_placing("int"),
    "term-after-placing": lambda: after_placing("term"),
    "none": lambda: None,
}


if __name__ == "__main__":
    FAULTS[sys.argv[1]]()
    if sys.argv[2:3] == ["run"]:  # `run --source ...`, which prepares first
        from pipeline.cli import main

        main(args=sys.argv[2:], prog_name="cli.py")
    data.main(args=["prepare", *sys.argv[2:]], prog_name="cli.py data")
