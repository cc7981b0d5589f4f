"""Benchmark: images/s of extraction and fine-tuning, float32 against mixed precision, XLA off/on.

On whatever device TensorFlow picks (the first GPU, else the CPU), with random inputs
already in memory (so only compute is timed) and random weights (timing does not depend
on their values):

    extract    a conv base's forward pass (``predict_on_batch``): VGG16 at 150 and 224 px
               and a light base (EfficientNet-Lite1 at 240 px from the registry, else
               Keras' MobileNetV2 at 224)
    finetune   one training step of what fine-tuning trains: the base's top block and a
               Flatten+Dense head, forward and backward, on the frozen part's output
    layers     forward and backward of SpatialPyramidPooling, LocallyConnected2D and
               NetVLAD on a 9x9x512 input (``pipeline.layers``)

each in float32 and mixed precision (``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a
CPU) with XLA (``jit_compile``) off and on. Steps are timed after a warm-up step (which
also compiles). The table gives images/s and each speed-up over float32 without XLA.

    .venv/bin/python bench/bench_gpu.py [--quick] [--batch-size 32] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from common import CANNOT_RUN

LAYER_INPUT = (9, 9, 512)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run (batch 4, 2 timed steps) that fits a CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32, quick 4")
    parser.add_argument("--steps", type=int, default=None, help="timed steps; default 10, "
                        "quick 2")
    parser.add_argument("--only", choices=("extract", "finetune", "layers"), nargs="+",
                        default=["extract", "finetune", "layers"])
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or (4 if args.quick else 32)
    args.steps = args.steps or (2 if args.quick else 10)
    return args


def time_steps(step: Callable[[], object], steps: int) -> float:
    """Seconds per step, after one warm-up step (tracing, XLA compilation)."""
    import numpy as np

    np.asarray(step())  # wait for the device: results come back as arrays
    start = time.perf_counter()
    for _ in range(steps):
        result = step()
    np.asarray(result)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notes: each configuration is a new model

    from pipeline.layers import LocallyConnected2D, NetVLAD, SpatialPyramidPooling
    from pipeline.models.bases import BASES
    from pipeline.models.transfer import split_at

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"GPU: {details.get('device_name', gpus[0].name)}"
    else:
        device = f"CPU: {os.cpu_count()} cores visible to TensorFlow"
    mixed = "mixed_float16" if gpus else "mixed_bfloat16"
    batch, steps = args.batch_size, args.steps
    print(f"device {device}; batch {batch}, {steps} timed steps; mixed = {mixed}")

    light = ("efficientnet_lite1", BASES["efficientnet_lite1"].default_image_size) \
        if "efficientnet_lite1" in BASES else ("mobilenet_v2", 224)
    bases = [("vgg16", 150), ("vgg16", 224), light]
    rng = np.random.default_rng(0)

    def conv_models(name: str, size: int) -> tuple[keras.Model, keras.Model, int]:
        """(whole base, top block + head, channels) built under the current dtype policy."""
        inputs = keras.Input((size, size, 3))
        if name in BASES:
            base = BASES[name].build(inputs, None)
            top_block = BASES[name].top_block
        else:
            base = keras.applications.MobileNetV2(include_top=False, weights=None,
                                                  input_tensor=inputs)
            top_block = "block_16_expand"
        head = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(
            keras.layers.Dense(256, activation="relu")(keras.layers.Flatten()(base.output)))
        bottom, top = split_at(keras.Model(inputs, head), top_block)
        return base, top, bottom.output.shape[1:]

    def layer_model(name: str) -> keras.Model:
        inputs = keras.Input(LAYER_INPUT)
        layer = {
            "SpatialPyramidPooling": lambda: SpatialPyramidPooling((1, 2, 4)),
            "LocallyConnected2D": lambda: LocallyConnected2D(64, 3),
            "NetVLAD": lambda: NetVLAD(16),
        }[name]()
        x = keras.layers.Flatten()(layer(inputs))
        return keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(x))

    def measure(kind: str, build: Callable[[], tuple[keras.Model, tuple[int, ...]]],
                policy: str, xla: bool) -> float:
        """images/s of ``kind`` ("extract" or a training kind) on the model ``build`` makes."""
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            keras.utils.set_random_seed(0)
            model, shape = build()
            x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
            y = rng.integers(0, 2, (batch, 1)).astype("float32")
            if kind == "extract":
                model.compile(jit_compile=xla)
                seconds = time_steps(lambda: model.predict_on_batch(x), steps)
            else:
                model.compile(keras.optimizers.RMSprop(1e-5), "binary_crossentropy",
                              jit_compile=xla)
                seconds = time_steps(lambda: model.train_on_batch(x, y), steps)
        finally:
            keras.config.set_dtype_policy(previous)
        return batch / seconds

    rows: list[tuple[str, str, dict[tuple[str, bool], float | str]]] = []
    for task in args.only:
        if task == "layers":
            cases = [(name, "fwd+bwd", lambda n=name: (layer_model(n), LAYER_INPUT))
                     for name in ("SpatialPyramidPooling", "LocallyConnected2D", "NetVLAD")]
        else:
            cases = []
            for name, size in bases:
                def build(n=name, s=size, t=task):
                    base, top, middle = conv_models(n, s)
                    return (base, (s, s, 3)) if t == "extract" else (top, tuple(middle))
                cases.append((f"{name} {size}px", task, build))
        for label, kind, build in cases:
            rates: dict[tuple[str, bool], float | str] = {}
            for policy in ("float32", mixed):
                for xla in (False, True):
                    try:
                        rates[policy, xla] = measure("extract" if kind == "extract" else
                                                     "train", build, policy, xla)
                    except Exception as error:  # one failing configuration is a result too
                        rates[policy, xla] = f"failed: {type(error).__name__}"
                    shown = rates[policy, xla]
                    print(f"  {label:26s} {kind:8s} {policy:15s} xla={'on ' if xla else 'off'} "
                          + (f"{shown:9.1f} images/s" if isinstance(shown, float) else shown),
                          flush=True)
            rows.append((label, kind, rates))

    columns = [("float32", False), ("float32", True), (mixed, False), (mixed, True)]
    names = ["f32", "f32+XLA", "mixed", "mixed+XLA"]
    print(f"\ndevice {device}; images/s (x speed-up over f32), batch {batch}")
    print(f"{'model':26s} {'task':8s} " + " ".join(f"{n:>17s}" for n in names))
    failed = 0
    for label, kind, rates in rows:
        reference = rates[columns[0]]
        cells = []
        for column in columns:
            value = rates[column]
            if isinstance(value, str):
                failed += 1
                cells.append(f"{'failed':>17s}")
            elif isinstance(reference, float):
                cells.append(f"{value:9.1f} ({value / reference:4.2f}x)")
            else:
                cells.append(f"{value:17.1f}")
        print(f"{label:26s} {kind:8s} " + " ".join(cells))
    if failed:
        print(f"cannot run: {failed} configurations failed (see the lines above)",
              file=sys.stderr)
        return CANNOT_RUN
    return 0


if __name__ == "__main__":
    sys.exit(main())
