"""A made-up report: five strategies, one fine-tuning a parent, wrong photos we generate."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.report import ConfusionMatrix, DatasetSummary, Report, RunSummary, WrongPhoto

FLOWERS = ("bluebell", "buttercup", "colts_foot", "cowslip", "crocus", "daffodil", "daisy",
           "dandelion", "fritillary", "iris", "lily_of_the_valley", "pansy", "snowdrop",
           "sunflower", "tigerlily", "tulip", "windflower")  # Oxford 17 Flowers' classes


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (300, 200)) -> Path:
    """A noisy colour photo stand-in, bigger than a thumbnail so shrinking shows."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def _png_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _history(epochs: int, start: float) -> dict[str, list[float]]:
    steps = np.arange(epochs)
    return {
        "accuracy": list(start + (0.99 - start) * (1 - np.exp(-steps / 3))),
        "val_accuracy": list(start - 0.02 + (0.9 - start) * (1 - np.exp(-steps / 3))),
        "loss": list(0.7 * np.exp(-steps / 4)),
        "val_loss": list(0.72 * np.exp(-steps / 5) + 0.01 * steps),
    }


@pytest.fixture
def report(tmp_path) -> Report:
    photos = tmp_path / "photos"
    photos.mkdir()
    wrong = (
        WrongPhoto(_jpeg(photos / "cat.17.jpg", 1), "cat", "dog", 0.97, gradcam=_png_bytes(7)),
        WrongPhoto(_jpeg(photos / "dog.3.jpg", 2), "dog", "cat", 0.91),
        WrongPhoto(_jpeg(photos / "dog <b>&amp; 'x'.jpg", 3), "dog", "cat", 0.80),
    )
    confusion = ConfusionMatrix(("cat", "dog"), ((480, 20), (12, 488)))
    runs = (
        RunSummary("scratch-1", "scratch", 0.712, 0.70, 30, 95.4, 3_453_121, _history(30, 0.5)),
        RunSummary("augment-1", "scratch-augment", 0.83, 0.815, 100, 812.0, 3_453_121,
                   _history(100, 0.5)),
        RunSummary("extract-1", "extract", 0.905, 0.90, 30, 41.0, 2_097_665, _history(30, 0.8)),
        RunSummary("finetune-1", "finetune", 0.972, 0.968, 20, 3_700.0, 7_079_424,
                   _history(20, 0.95), parent="extract-1", confusion=confusion,
                   wrong_photos=wrong, model="vgg16", image_size=150, balanced_accuracy=0.968,
                   macro_f1=0.9679, recall={"cat": 0.96, "dog": 0.976}),
    )
    dataset = DatasetSummary(
        "cats_and_dogs_small", "data/cats_and_dogs_small", ("cat", "dog"),
        counts={"train": {"cat": 1000, "dog": 1000}, "validation": {"cat": 500, "dog": 500},
                "test": {"cat": 500, "dog": 500}}, layout="kaggle-flat")
    return Report(runs, dataset="generated test numbers, not a real training",
                  datasets=(dataset,))


@pytest.fixture
def flowers_report() -> Report:
    """Two made-up runs on 17 uneven classes, with a 17 x 17 confusion matrix."""
    rng = np.random.default_rng(4)
    sizes = [20 + 3 * index for index in range(len(FLOWERS))]
    counts = {split: {name: max(2, size // share)
                      for name, size in zip(FLOWERS, sizes, strict=True)}
              for split, share in (("train", 1), ("validation", 4), ("test", 4))}
    rows = []
    for index, name in enumerate(FLOWERS):
        row = rng.multinomial(counts["test"][name] // 3, np.ones(len(FLOWERS)) / len(FLOWERS))
        row[index] += counts["test"][name] - row.sum()
        rows.append(tuple(int(value) for value in row))
    confusion = ConfusionMatrix(FLOWERS, tuple(rows))
    recall = {name: row[i] / sum(row)
              for i, (name, row) in enumerate(zip(FLOWERS, rows, strict=True))}
    runs = (
        RunSummary("extract", "extract", 0.81, 0.8, 30, 60.0, 8_721, _history(30, 0.3),
                   model="efficientnet_lite1", image_size=240, balanced_accuracy=0.79,
                   macro_f1=0.785, recall=recall, confusion=confusion),
        RunSummary("scratch", "scratch", 0.41, 0.4, 30, 300.0, 3_453_121, _history(30, 0.1),
                   model="convnet", image_size=150),
    )
    dataset = DatasetSummary("oxford-flowers-17", "data/oxford-flowers-17", FLOWERS,
                             counts=counts, layout="class-folders")
    return Report(runs, title="oxford-flowers-17: small-data strategies compared",
                  datasets=(dataset,))


@pytest.fixture(scope="session")
def trained_runs(synthetic_dataset, tmp_path_factory) -> tuple[Path, Path]:
    """A real extract run and the finetune run that continues it, both evaluated on test.

    A randomly initialised VGG16 at 32 px on the generated dataset: seconds of training,
    real run folders with everything ``evaluate`` writes.
    """
    from pipeline.evaluation.evaluate import evaluate_run
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.extract.workflow import ExtractConfig, run_extract
    from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

    models = tmp_path_factory.mktemp("report-runs")
    extract = run_extract(ExtractConfig(
        data_dir=synthetic_dataset, models_dir=models, run_name="extract-a", weights="none",
        image_size=32, training=TrainingOptions(epochs=3, batch_size=8),
    ), verbose=0)
    finetune = run_finetune(FinetuneConfig(
        source_run=extract.path, models_dir=models, run_name="finetune-a", augment=False,
        training=TrainingOptions(epochs=2, batch_size=8),
    ), verbose=0)
    for run in (extract, finetune):
        evaluate_run(run.path, "test")
    return extract.path, finetune.path


def write_many_class_source(folder: Path, classes: tuple[str, ...], per_class: int,
                            side: int = 48) -> Path:
    """A folder of class sub-folders of generated JPEGs, for any number of classes.

    ``data synth`` draws one shape a class and has fewer shapes than 17; here class ``i``
    draws shape ``i % 8`` as it is, turned a quarter (``i // 8 == 1``) or with its colours
    inverted (``i // 8 == 2``), so every class still differs from the others.
    """
    from PIL import ImageOps

    from pipeline.data.synth import SHAPES, draw_sample

    for index, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for k in range(per_class):
            image = draw_sample(SHAPES[index % len(SHAPES)], side,
                                np.random.default_rng([index, k]))
            variant = index // len(SHAPES)
            if variant == 1:
                image = image.transpose(Image.Transpose.ROTATE_90)
            elif variant == 2:
                image = ImageOps.invert(image)
            image.save(folder / name / f"{name}-{k}.jpg", format="JPEG", quality=90)
    return folder


@pytest.fixture(scope="session")
def flowers_run(tmp_path_factory) -> Path:
    """A from-scratch run on a prepared 17-class generated dataset, evaluated on test."""
    from pipeline.data.prepare import PrepareConfig, prepare_dataset
    from pipeline.evaluation.evaluate import evaluate_run
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    root = tmp_path_factory.mktemp("flowers")
    source = write_many_class_source(root / "flowers-17", FLOWERS, per_class=5)
    prepared = prepare_dataset(PrepareConfig(source=source, data_root=root / "data",
                                             train=3, validation=1, test=1), progress=False)
    run = train_scratch(ScratchConfig(
        data_dir=prepared.dataset_dir, models_dir=root / "models", run_name="scratch-17",
        image_size=48, training=TrainingOptions(epochs=1, batch_size=17),
    ), verbose=0)
    evaluate_run(run.path, "test")
    return run.path
