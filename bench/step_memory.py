"""Peak allocator memory of one layer variant's step, each variant in a fresh process.

TensorFlow's allocator keeps its statistics for the life of a process, so each variant is
measured in a child of its own: the benchmark script run again with ``--child NAME``, with
TensorFlow's BFC allocator on the CPU so that the statistics exist there too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any


def print_peak(step: Callable[[Any], Any], x: Any, warmup: int, repeats: int) -> None:
    """In the child: run ``step(x)`` (its second output is read back), print the peak as JSON."""
    import tensorflow as tf

    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    for _ in range(max(warmup, 1)):
        step(x)[1].numpy()
    tf.config.experimental.reset_memory_stats(device)
    before = tf.config.experimental.get_memory_info(device)["current"]
    for _ in range(repeats):
        step(x)[1].numpy()
    peak = tf.config.experimental.get_memory_info(device)["peak"]
    print(json.dumps({"device": device, "before": before, "peak": peak}))


def child_options(args: Any, names: tuple[str, ...]) -> list[str]:
    """The command-line options that give a child the parent's ``args`` of these ``names``."""
    options = []
    for name in names:
        options += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return [*options, "--jit"] if args.jit else options


def measure_in_child(script: str, name: str, options: list[str]) -> dict | None:
    """Run ``script --child name *options``; its printed peak, or None (said on stderr)."""
    command = [sys.executable, script, "--child", name, *options]
    env = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"  memory subprocess for {name!r} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def child_or_benchmark(args: Any, child: Callable[[Any], None],
                       benchmark: Callable[[Any], None]) -> None:
    """A layer benchmark's two roles in one script: with ``--child NAME`` the fresh process
    that measures one variant's peak (``child``), else the benchmark itself."""
    if args.child:
        child(args)
    else:
        benchmark(args)


def time_interleaved(steps: dict[str, Callable[[Any], Any]], x: Any,
                     repeats: int) -> dict[str, list[float]]:
    """Seconds of each step per repeat, the variants interleaved so that a noisy neighbour
    slows them alike (each step's second output is read back: the work is done)."""
    import time

    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step(x)[1].numpy()
            times[name].append(time.perf_counter() - start)
    return times


def peaks_in_children(script: str, names: list[str], args: Any,
                      option_names: tuple[str, ...]) -> dict[str, dict | None]:
    """Each variant's allocator peak, measured in a fresh process; {} with ``--no-memory``."""
    if args.no_memory:
        return {}
    options = child_options(args, option_names)
    return {name: measure_in_child(script, name, options) for name in names}
