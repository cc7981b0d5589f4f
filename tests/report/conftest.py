"""A made-up report: five strategies, one fine-tuning a parent, wrong photos we generate."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.report import ConfusionMatrix, Report, RunSummary, WrongPhoto


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
                   wrong_photos=wrong),
    )
    return Report(runs, dataset="generated test numbers, not a real training")


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
