"""Benchmark: ``predict`` on a folder of JPEGs against the same model on images in memory.

On the same photos of a prepared dataset's test split, in one run, with one saved model (a
conv base with its offline ImageNet weights under a small head, as ``extract`` saves it):

    predict      the pipeline's path from files: ``predict_files`` (threads decode and resize
                 photos ahead while the compiled ``predict_on_batch`` runs)
    eager        the path ``predict`` took before: decode one photo at a time, then an eager
                 ``model(x, training=False)`` call per batch
    ceiling      ``predict_on_batch`` on the same photos already decoded in memory: pure compute
    evaluate     ``evaluate_run`` on the whole test split (tf.data decoding, metrics and the
                 files it writes: confusion matrix, worst mistakes), per photo of the split

Each is timed after a warm-up; with ``--repeats`` the best time of each counts (the CPU may be
shared). Targets: ``predict`` and ``evaluate`` at least 80% of the ceiling's images/s.

    .venv/bin/python bench/bench_predict.py [--data DIR] [--images 256] [--base efficientnet_lite1]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import (
    CANNOT_RUN,
    at_least,
    dataset_missing,
    dataset_parser,
    exit_status,
    print_rates,
    verdict,
)


def parse_args(argv: list[str] | None = None):
    parser = dataset_parser(__doc__)
    parser.add_argument("--images", type=at_least(1), default=256, help="test-split photos")
    parser.add_argument("--batch-size", type=at_least(1), default=32)
    parser.add_argument("--base", default="efficientnet_lite1")
    parser.add_argument("--repeats", type=at_least(1), default=2, help="timed passes per method")
    return parser.parse_args(argv)


def saved_run(models: Path, data: Path, base_name: str):
    """A run folder holding the base under a softmax head, loaded as ``predict`` loads it."""
    import keras

    from pipeline.data.manifest import class_names, require_prepared
    from pipeline.evaluation.saved_model import load_run_model
    from pipeline.models.bases import get_base
    from pipeline.models.saving import save_model
    from pipeline.models.transfer import build_features_model
    from pipeline.models.weights import resolve_weights
    from pipeline.runs.folder import BEST_MODEL, Run, RunRecord

    names = class_names(require_prepared(data))
    base = get_base(base_name)
    size = base.default_image_size
    features = build_features_model(base, resolve_weights("auto", base, size), size)
    pooled = keras.layers.GlobalAveragePooling2D()(features.output)
    outputs = keras.layers.Dense(len(names), activation="softmax")(pooled)
    run = Run.create(models, "extract", "bench-predict")
    run.write_record(RunRecord(kind="extract", data_dir=str(data), class_names=list(names),
                               image_size=size, base=base.name, status="completed"))
    save_model(keras.Model(features.input, outputs), run.file(BEST_MODEL))
    return load_run_model(run.path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dataset_missing(args.data):
        return CANNOT_RUN
    import numpy as np

    from pipeline.data.image_file import load_image_array
    from pipeline.data.manifest import require_prepared
    from pipeline.evaluation.evaluate import evaluate_run
    from pipeline.evaluation.predict import predict_files

    files = sorted((args.data / "test").rglob("*.jpg"))[:args.images]
    if not files:
        print(f"cannot run: {args.data / 'test'} holds no JPEG", file=sys.stderr)
        return CANNOT_RUN
    count, batch = len(files), args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        loaded = saved_run(Path(tmp), args.data, args.base)
        size = loaded.image_size
        print(f"{args.base} at {size} px, {count} photos of {args.data / 'test'}, batch {batch}")
        in_memory = np.stack([load_image_array(path, size) for path in files])

        def run_predict() -> float:
            start = time.perf_counter()
            rows = predict_files(loaded, ((path, None) for path in files), batch)
            assert len(rows) == count and all(row.error is None for row in rows)
            return time.perf_counter() - start

        def run_eager() -> float:
            start = time.perf_counter()
            for first in range(0, count, batch):
                images = np.stack([load_image_array(path, size)
                                   for path in files[first:first + batch]])
                np.asarray(loaded.model(images, training=False))
            return time.perf_counter() - start

        def run_ceiling() -> float:
            start = time.perf_counter()
            for first in range(0, count, batch):
                chunk = in_memory[first:first + batch]
                if len(chunk) < batch:  # the same padding predict_files uses: one trace
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), 0)])
                loaded.model.predict_on_batch(chunk)
            return time.perf_counter() - start

        split_count = sum(require_prepared(args.data)["counts"]["test"].values())

        def run_evaluate() -> float:  # per photo of the split: scaled to ``count`` photos
            start = time.perf_counter()
            evaluate_run(loaded.run.path, "test", out_dir=Path(tmp) / "evaluation",
                         batch_size=batch, force=True)
            return (time.perf_counter() - start) * count / split_count

        loaded.model.predict_on_batch(in_memory[:batch])  # warm-up: tracing, allocations
        loaded.model(in_memory[:batch], training=False)
        times: dict[str, float] = {}
        for repeat in range(args.repeats):
            for name, method in (("predict", run_predict), ("eager", run_eager),
                                 ("ceiling", run_ceiling), ("evaluate", run_evaluate)):
                elapsed = method()
                times[name] = min(times.get(name, float("inf")), elapsed)
                print(f"  pass {repeat + 1}: {name:8s} {count / elapsed:7.2f} images/s")

    ceiling = count / times["ceiling"]
    print_rates(times, count, ceiling, width=10)
    met = {name: count / times[name] >= 0.8 * ceiling for name in ("predict", "evaluate")}
    for name, ok in met.items():
        print(f"target {name} >= 80% of the in-memory predict_on_batch rate: {verdict(ok)}")
    return exit_status(*met.values())


if __name__ == "__main__":
    sys.exit(main())
