"""Benchmark: one training step of a whole conv base, the model's graph against its training twin.

Whole-base fine-tuning (``finetune --unfreeze all``) trains every convolution with every
BatchNormalization frozen; ``pipeline.models.training_graph`` trains it through a twin graph
with those normalizations folded into the convolutions (and, in bfloat16, depthwise
gradients computed by forward convolutions). This times ``train_on_batch`` of the real
transfer model (EfficientNet-Lite1 at 240 px by default, a ``gap`` head, random weights:
timing does not depend on their values) on random images in memory, four ways, interleaved
in one run: float32 and mixed precision, each through the model's own graph and through
the twin. The machine's own ceiling (a 3x3 convolution in float32 and bfloat16) is printed
beside them.

Target (issue 25): in mixed precision the twin's step is faster than float32's step through
the model's graph (before: 0.66x). Exit status 0 when it is met, 1 when not, 2 when it
cannot run.

    .venv/bin/python bench/bench_whole_base.py [--base efficientnet_lite1] [--batch-size 20]
"""

from __future__ import annotations

import argparse
import sys
import time

from common import CANNOT_RUN, at_least, convolution_rates, exit_status, verdict

TARGET_MIXED_OVER_FLOAT32 = 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="efficientnet_lite1")
    parser.add_argument("--image-size", type=at_least(32), default=None,
                        help="default: the base's own")
    parser.add_argument("--batch-size", type=at_least(1), default=20,
                        help="fine-tuning's default batch (20)")
    parser.add_argument("--steps", type=at_least(1), default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=at_least(1), default=2,
                        help="interleaved rounds; the best round counts")
    return parser.parse_args(argv)


def whole_base_model(base_name: str, image_size: int | None, precision: str):
    """The transfer model fine-tuning trains, the whole base unfrozen, compiled; its size."""
    import keras

    from pipeline.models.bases import get_base
    from pipeline.models.transfer import build_transfer_model, unfreeze
    from pipeline.models.weights import resolve_weights
    from pipeline.training.precision import policy_name

    base = get_base(base_name)
    size = image_size or base.default_image_size
    keras.config.set_dtype_policy(policy_name(precision))
    try:
        weights = resolve_weights("none", base, size)
        model = build_transfer_model(base, weights, size, 17, head="gap")
    finally:
        keras.config.set_dtype_policy("float32")
    unfreeze(model, base, "all")
    model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    return model, size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import numpy as np

        from pipeline.errors import PipelineError
        from pipeline.models.training_graph import faster_training
    except ImportError as error:
        print(f"cannot run: {error}; exit status {CANNOT_RUN}", file=sys.stderr)
        return CANNOT_RUN
    try:
        models = {precision: whole_base_model(args.base, args.image_size, precision)
                  for precision in ("float32", "mixed")}
    except PipelineError as error:
        print(f"cannot run: {error}; exit status {CANNOT_RUN}", file=sys.stderr)
        return CANNOT_RUN
    size = models["float32"][1]
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch_size, size, size, 3)).astype("float32")
    labels = rng.integers(0, 17, args.batch_size)

    def step_seconds(model, twin: bool) -> float:
        if twin:
            with faster_training(model) as used:
                if not used:
                    raise SystemExit(f"cannot run: {args.base} has no frozen normalization to "
                                     f"fold; exit status {CANNOT_RUN}")
                return step_seconds(model, twin=False)
        model.make_train_function(force=True)  # traced again: through the twin or not
        model.train_on_batch(images, labels)  # warm-up (tracing)
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(images, labels)
        return (time.perf_counter() - start) / args.steps

    ways = [(precision, twin) for precision in ("float32", "mixed") for twin in (False, True)]
    best: dict[tuple[str, bool], float] = {}
    for _ in range(args.rounds):
        for precision, twin in ways:
            seconds = step_seconds(models[precision][0], twin)
            best[precision, twin] = min(best.get((precision, twin), float("inf")), seconds)
    ceiling = convolution_rates()

    rate = {way: args.batch_size / seconds for way, seconds in best.items()}
    before = rate["float32", False]
    print(f"\n{args.base} at {size} px, whole base trained, batch {args.batch_size}: "
          "images/s of one training step")
    print(f"{'precision':10s} {'graph':18s} {'images/s':>9s} {'vs float32 model':>17s}")
    for (precision, twin), value in rate.items():
        graph = "training twin" if twin else "model (BN layers)"
        print(f"{precision:10s} {graph:18s} {value:9.1f} {value / before:16.2f}x")
    print(f"machine ceiling, 3x3 convolution: float32 {ceiling['float32']:.0f} GFLOP/s, "
          f"bfloat16 {ceiling['bfloat16']:.0f} GFLOP/s "
          f"({ceiling['bfloat16'] / ceiling['float32']:.2f}x)")

    mixed = rate["mixed", True] / before
    print(f"target: mixed twin step >= {TARGET_MIXED_OVER_FLOAT32:.1f}x the float32 model "
          f"step: {mixed:.2f}x, {verdict(mixed >= TARGET_MIXED_OVER_FLOAT32)}")
    return exit_status(mixed >= TARGET_MIXED_OVER_FLOAT32)


if __name__ == "__main__":
    sys.exit(main())
