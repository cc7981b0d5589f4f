"""Benchmark: pipeline's LocallyConnected2D against Keras 2's (tf_keras) implementations 1 and 2.

One training step (forward, then gradients for the weights and the input, in one
`tf.function` per variant) on the same input and the same weights; the steps of the variants
are interleaved, repeated, and their medians compared in one run. Memory: the bytes of the
stored weights, the analytic size of the largest intermediate tensors, and the peak of
TensorFlow's allocator during a step (tensors in use at once, on top of what was in use before
the step), measured in a fresh subprocess per variant; on CPU the subprocess sets
TF_CPU_ALLOCATOR_USE_BFC=true so that TensorFlow keeps these statistics.

    .venv/bin/python bench/bench_locally_connected.py [--batch 16 --size 9 --channels 256 ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from common import at_least
from step_memory import child_or_benchmark, peaks_in_children, print_peak, time_interleaved

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("pipeline", "tf_keras impl=1", "tf_keras impl=2")
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=at_least(1), default=16)
    parser.add_argument("--size", type=at_least(1), default=9, help="input height and width")
    parser.add_argument("--channels", type=at_least(1), default=256)
    parser.add_argument("--kernel", type=at_least(1), default=3)
    parser.add_argument("--filters", type=at_least(1), default=64)
    parser.add_argument("--repeats", type=at_least(1), default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=at_least(1), default=3, help="untimed steps per variant")
    parser.add_argument("--jit", action="store_true", help="tf.function(jit_compile=True)")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, metavar="VARIANT"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocesses")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.kernel > args.size:
        parser.error(f"--kernel {args.kernel} is larger than --size {args.size}")
    return args


def build_variants(args: argparse.Namespace, names) -> tuple[object, dict]:
    """The input and, per variant, `(layer, step)` with the same weights for all variants."""
    import numpy as np
    import tensorflow as tf
    import tf_keras

    from pipeline.layers import LocallyConnected2D, load_keras2_weights

    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, args.channels)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    k, f = args.kernel, args.filters
    reference = tf_keras.layers.LocallyConnected2D(f, k, implementation=1)
    reference.build(shape)
    kernel1 = rng.normal(scale=0.05, size=reference.kernel.shape).astype("float32")
    bias = rng.normal(size=reference.bias.shape).astype("float32")
    reference.set_weights([kernel1, bias])
    layers = {}
    for name in names:
        if name == "pipeline":
            layer = LocallyConnected2D(f, k)
            layer.build(shape)
            load_keras2_weights(layer, reference)
        elif name == "tf_keras impl=1":
            layer = reference
        else:
            layer = tf_keras.layers.LocallyConnected2D(f, k, implementation=2)
            layer.build(shape)
            # Implementation 2 keeps a dense (H, W, C, out_h, out_w, F) kernel, zero off-window.
            dense = np.zeros(layer.kernel.shape, "float32")
            out = args.size - k + 1
            for p in range(out * out):
                r, c = divmod(p, out)
                dense[r : r + k, c : c + k, :, r, c, :] = kernel1[p].reshape(k, k, -1, f)
            layer.set_weights([dense, bias])
        layers[name] = (layer, _make_step(layer, args.jit))
    return x, layers


def _make_step(layer, jit: bool):
    import tensorflow as tf

    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.square(y))
        gradients = tape.gradient(loss, [x, *layer.trainable_weights])
        return y, loss, gradients

    return step


def analytic_memory(args: argparse.Namespace) -> dict[str, tuple[int, int, str]]:
    """Per variant: stored weight bytes, largest intermediate bytes, and what that tensor is."""
    b, s, c, k, f = args.batch, args.size, args.channels, args.kernel, args.filters
    o = s - k + 1
    positions, patch = o * o, k * k * c
    weights1 = (positions * patch * f + o * o * f) * 4
    weights2 = (s * s * c * positions * f + o * o * f) * 4
    patches = b * positions * patch * 4
    return {
        "pipeline": (
            weights1,
            max(patches, k * k * b * s * s * c * 4),
            f"patches (P,B,K) {patches / MIB:.1f} MiB; backward: k*k={k * k} input-sized "
            "slice gradients",
        ),
        "tf_keras impl=1": (
            weights1,
            positions * b * s * s * c * 4,
            f"patches (P,B,K) {patches / MIB:.1f} MiB; backward: P={positions} input-sized "
            "slice gradients summed",
        ),
        "tf_keras impl=2": (
            weights2,
            weights2,
            "dense masked kernel (H*W*C, P*F), also its mask product and gradient",
        ),
    }


# The options a memory child needs to build the same variants as its parent.
CHILD_OPTIONS = ("batch", "size", "channels", "kernel", "filters", "warmup")


def child(args: argparse.Namespace) -> None:
    """Allocator peak of one variant's step, printed as JSON (run in a fresh process)."""
    x, layers = build_variants(args, [args.child])
    _, step = layers[args.child]
    print_peak(step, x, args.warmup, repeats=3)


def main(argv: list[str] | None = None) -> None:
    child_or_benchmark(parse_args(argv), child, benchmark)


def benchmark(args: argparse.Namespace) -> None:
    """Time and measure every variant side by side; print the table and the ratios."""
    import numpy as np
    import tensorflow as tf

    names = [name for name in VARIANTS if name in args.variants]
    x, layers = build_variants(args, names)
    device = "GPU" if tf.config.list_logical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    out = args.size - args.kernel + 1
    print(
        f"LocallyConnected2D, one training step (forward + gradients for weights and input): "
        f"input {args.batch}x{args.size}x{args.size}x{args.channels}, kernel {args.kernel}x"
        f"{args.kernel}, {args.filters} filters, valid -> {out}x{out}x{args.filters}; "
        f"{device}; TensorFlow {tf.__version__}; tf.function jit_compile={args.jit}"
    )
    outputs = {}
    for name, (_, step) in layers.items():
        for _ in range(args.warmup):
            y, loss, _ = step(x)
            loss.numpy()
        outputs[name] = np.asarray(y)
    base = outputs[names[0]]
    scale = float(np.abs(base).max())
    for name in names[1:]:
        diff = float(np.abs(outputs[name] - base).max())
        print(f"check: max |{name} - {names[0]}| = {diff:.2e} (outputs up to {scale:.1f})")

    times = time_interleaved({name: layers[name][1] for name in names}, x, args.repeats)
    memory = analytic_memory(args)
    measured = peaks_in_children(__file__, names, args, CHILD_OPTIONS)
    mine = statistics.median(times["pipeline"]) if "pipeline" in times else None
    print(f"\nmedian of {args.repeats} interleaved steps after {args.warmup} warm-up steps")
    header = (
        f"{'variant':<17}{'ms/step':>9}{'min ms':>8}{'x pipeline':>11}{'weights MiB':>12}"
        f"{'largest MiB':>12}{'peak MiB':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        median = statistics.median(times[name])
        ratio = f"{median / mine:.2f}" if mine else "-"
        weights, largest, _ = memory[name]
        peak = "-"
        record = measured.get(name)
        if record:
            peak = f"{(record['peak'] - record['before']) / MIB:.1f}"
        print(
            f"{name:<17}{median * 1e3:>9.2f}{min(times[name]) * 1e3:>8.2f}{ratio:>11}"
            f"{weights / MIB:>12.1f}{largest / MIB:>12.1f}{peak:>10}"
        )
    print(
        "\nx pipeline: median time / pipeline's median time (higher = slower than pipeline).\n"
        "weights MiB: bytes of the stored weights. largest MiB: analytic size of the largest\n"
        "intermediate (float32):"
    )
    for name in names:
        print(f"  {name}: {memory[name][2]}")
    if measured:
        print(
            "peak MiB: TensorFlow allocator peak during 3 steps minus the bytes in use before\n"
            "them (weights, input): the step's tensors alive at once; fresh process per variant."
        )

if __name__ == "__main__":
    main()
