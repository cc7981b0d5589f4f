"""Benchmark: pipeline's NetVLAD against the naive broadcast form (a batch x N x K x D tensor).

One training step (forward, then gradients for the weights and the input, in one
`tf.function` per variant) on the same input and the same weights; the steps of the variants
are interleaved, repeated, and their medians compared in one run. Memory: the analytic size
of the largest intermediate tensor, and the peak of TensorFlow's allocator during a step
(tensors in use at once, on top of what was in use before the step), measured in a fresh
subprocess per variant; on CPU the subprocess sets TF_CPU_ALLOCATOR_USE_BFC=true so that
TensorFlow keeps these statistics.

    .venv/bin/python bench/bench_netvlad.py [--batch 16 --size 14 --dim 512 --clusters 64 ...]
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

VARIANTS = ("pipeline", "naive broadcast")
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=at_least(1), default=16)
    parser.add_argument("--size", type=at_least(1), default=14, help="feature map height and width")
    parser.add_argument("--dim", type=at_least(1), default=512, help="descriptor size D")
    parser.add_argument("--clusters", type=at_least(1), default=64)
    parser.add_argument("--ghost-clusters", type=at_least(0), default=0)
    parser.add_argument("--repeats", type=at_least(1), default=10, help="timed steps per variant")
    parser.add_argument("--warmup", type=at_least(1), default=2, help="untimed steps per variant")
    parser.add_argument("--jit", action="store_true", help="tf.function(jit_compile=True)")
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocesses")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def naive_netvlad(x, kernel, bias, centers, clusters: int, epsilon: float = 1e-12):
    """The formula as written: residuals x_n - c_k of shape (batch, N, K, D), weighted, summed."""
    from keras import ops

    x = ops.reshape(x, (ops.shape(x)[0], -1, ops.shape(x)[-1]))
    assignment = ops.softmax(ops.matmul(x, kernel) + bias, axis=-1)[:, :, :clusters]
    residuals = x[:, :, None, :] - centers[None, None, :, :]
    vlad = ops.sum(assignment[:, :, :, None] * residuals, axis=1)
    vlad = vlad / ops.sqrt(ops.sum(ops.square(vlad), axis=-1, keepdims=True) + epsilon)
    vlad = ops.reshape(vlad, (ops.shape(vlad)[0], -1))
    return vlad / ops.sqrt(ops.sum(ops.square(vlad), axis=-1, keepdims=True) + epsilon)


def build(args: argparse.Namespace) -> tuple[object, object, dict]:
    """The input, the layer, and per variant a step with the layer's weights."""
    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.layers import NetVLAD

    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, args.dim)
    x = tf.constant(np.maximum(rng.normal(size=shape), 0).astype("float32"))  # ReLU-like
    keras.utils.set_random_seed(0)
    layer = NetVLAD(args.clusters, ghost_clusters=args.ghost_clusters, alpha=1.0)
    layer.build(shape)
    weights = layer.trainable_weights

    def forward_pipeline(inputs):
        return layer(inputs)

    def forward_naive(inputs):
        return naive_netvlad(inputs, layer.kernel, layer.bias, layer.centers, args.clusters)

    steps = {}
    for name, forward in (("pipeline", forward_pipeline), ("naive broadcast", forward_naive)):

        @tf.function(jit_compile=args.jit)
        def step(inputs, forward=forward):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                y = forward(inputs)
                loss = tf.reduce_sum(y * tf.range(y.shape[-1], dtype=y.dtype))
            return y, loss, tape.gradient(loss, [inputs, *weights])

        steps[name] = step
    return x, layer, steps


def analytic_memory(args: argparse.Namespace) -> dict[str, tuple[int, str]]:
    b, n, d, k = args.batch, args.size * args.size, args.dim, args.clusters
    total = k + args.ghost_clusters
    sizes = {
        "input (B,N,D)": b * n * d * 4,
        "assignment (B,N,K+G)": b * n * total * 4,
        "VLAD (B,K,D)": b * k * d * 4,
    }
    largest = max(sizes, key=sizes.get)
    return {
        "pipeline": (sizes[largest], largest),
        "naive broadcast": (b * n * k * d * 4, "residuals (B,N,K,D), and the weighted copy"),
    }


# The options a memory child needs to build the same variants as its parent.
CHILD_OPTIONS = ("batch", "size", "dim", "clusters", "ghost_clusters", "warmup")


def child(args: argparse.Namespace) -> None:
    """Allocator peak of one variant's step, printed as JSON (run in a fresh process)."""
    x, _, steps = build(args)
    step = steps[args.child]
    print_peak(step, x, args.warmup, repeats=2)


def main(argv: list[str] | None = None) -> None:
    child_or_benchmark(parse_args(argv), child, benchmark)


def benchmark(args: argparse.Namespace) -> None:
    """Time and measure every variant side by side; print the table and the ratios."""
    import numpy as np
    import tensorflow as tf

    x, _, steps = build(args)
    device = "GPU" if tf.config.list_logical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    n = args.size * args.size
    print(
        f"NetVLAD, one training step (forward + gradients for weights and input): "
        f"B={args.batch}, N={args.size}x{args.size}={n}, D={args.dim}, K={args.clusters}, "
        f"G={args.ghost_clusters}; {device}; TensorFlow {tf.__version__}; "
        f"tf.function jit_compile={args.jit}"
    )
    outputs, gradients = {}, {}
    for name, step in steps.items():
        for _ in range(args.warmup):
            y, loss, grads = step(x)
            loss.numpy()
        outputs[name], gradients[name] = np.asarray(y), [np.asarray(g) for g in grads]
    diff = float(np.abs(outputs["naive broadcast"] - outputs["pipeline"]).max())
    grad_diff = max(
        float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30))
        for a, b in zip(gradients["naive broadcast"], gradients["pipeline"], strict=True)
    )
    print(
        f"check: max |naive - pipeline| output {diff:.2e}, gradients (relative to max) "
        f"{grad_diff:.2e}"
    )

    times = time_interleaved(steps, x, args.repeats)
    memory = analytic_memory(args)
    measured = peaks_in_children(__file__, list(steps), args, CHILD_OPTIONS)
    mine = statistics.median(times["pipeline"])
    print(f"\nmedian of {args.repeats} interleaved steps after {args.warmup} warm-up steps")
    header = f"{'variant':<17}{'ms/step':>9}{'min ms':>9}{'x pipeline':>11}{'largest MiB':>12}"
    header += f"{'peak MiB':>10}"
    print(header)
    print("-" * len(header))
    for name in steps:
        median = statistics.median(times[name])
        record = measured.get(name)
        peak = f"{(record['peak'] - record['before']) / MIB:.1f}" if record else "-"
        print(
            f"{name:<17}{median * 1e3:>9.1f}{min(times[name]) * 1e3:>9.1f}{median / mine:>11.2f}"
            f"{memory[name][0] / MIB:>12.1f}{peak:>10}"
        )
    print(
        "\nx pipeline: median time / pipeline's median time (higher = slower than pipeline).\n"
        "largest MiB: analytic size of the largest intermediate (float32):"
    )
    for name in steps:
        print(f"  {name}: {memory[name][1]}")
    if measured:
        print(
            "peak MiB: TensorFlow allocator peak during 2 steps minus the bytes in use before\n"
            "them (weights, input): the step's tensors alive at once; fresh process per variant."
        )


if __name__ == "__main__":
    main()
