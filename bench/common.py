"""What the dataset benchmarks share: their command line, exit statuses, a clear skip.

The benchmarks run on a prepared dataset (``python cli.py data prepare``), by default
``data/cats_and_dogs_small`` or the folder in ``$BENCH_DATASET``. Exit status: 0 when every
target is met, ``MISSED`` when one is not, ``CANNOT_RUN`` when the benchmark could not run
(no dataset): a script or CI never mistakes a skip or a miss for a pass.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, when run as a script

MISSED = 1  # exit status: ran, and a target was not met
CANNOT_RUN = 2  # exit status: could not run (e.g. no prepared dataset)
DATASET_ENV = "BENCH_DATASET"
DEFAULT_DATASET = Path("data/cats_and_dogs_small")


def dataset_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by ``doc``'s first paragraph, with ``--data``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get(DATASET_ENV, DEFAULT_DATASET)),
                        help=f"prepared dataset (default: ${DATASET_ENV}, else {DEFAULT_DATASET})")
    return parser


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum`` (else a one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def dataset_missing(path: Path) -> bool:
    """True, after saying so on stderr, when ``path`` holds no prepared dataset.

    The caller then exits with ``CANNOT_RUN``.
    """
    if (Path(path) / "manifest.json").is_file():
        return False
    print(f"cannot run: prepared dataset {path} not found (prepare one with "
          f"`python cli.py data prepare --source PHOTOS`, or set {DATASET_ENV}); "
          f"exit status {CANNOT_RUN}", file=sys.stderr)
    return True


def print_rates(times: dict[str, float], count: int, ceiling: float, width: int = 28) -> None:
    """A table of each method's images/s (``count`` images in ``times[name]`` seconds) and its
    share of ``ceiling`` images/s."""
    print(f"\n{'method':{width}s} {'images/s':>9s} {'of ceiling':>11s}")
    for name, elapsed in times.items():
        rate = count / elapsed
        print(f"{name:{width}s} {rate:9.2f} {rate / ceiling:10.1%}")


def run_stamp() -> str:
    """The time now as run names carry it (``20261203-133000``): a report's runs, distinct."""
    from datetime import datetime

    return datetime.now().strftime("%Y%m%d-%H%M%S")


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def exit_status(*targets_met: bool) -> int:
    """0 when every target is met, ``MISSED`` otherwise."""
    return 0 if all(targets_met) else MISSED


def convolution_rates(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of one 3x3 convolution (VGG16's block3 at 150 px, batch 32) in float32 and
    bfloat16, timed alternately in this run (best of ``repeats``): this machine's own ceiling,
    beside which every speed figure of a benchmark is read."""
    import time

    import tensorflow as tf

    seconds: dict[str, float] = {}
    calls = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        images = tf.cast(tf.random.normal((32, 38, 38, 256), seed=1), dtype)
        kernel = tf.cast(tf.random.normal((3, 3, 256, 256), seed=2), dtype)
        conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
        conv(images, kernel).numpy()  # traced and warmed up
        calls[name] = (conv, images, kernel)
    for _ in range(repeats):
        for name, (conv, images, kernel) in calls.items():
            start = time.perf_counter()
            for _ in range(4):
                result = conv(images, kernel)
            result.numpy()
            seconds[name] = min(seconds.get(name, float("inf")), time.perf_counter() - start)
    flops = 4 * 2 * 32 * 38 * 38 * 256 * 256 * 9  # four calls; a multiply-add is two
    return {name: flops / elapsed / 1e9 for name, elapsed in seconds.items()}


def convolution_ceiling(repeats: int = 5) -> float:
    """This CPU's own bfloat16 / float32 speed ratio for that convolution: no model of
    convolutions gains more from mixed precision, so mixed-precision targets are measured
    against it."""
    rates = convolution_rates(repeats)
    return rates["bfloat16"] / rates["float32"]
