"""Fixtures shared by the whole suite: small generated datasets, never real photos."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """A prepared two-class dataset of 48 px JPEGs (16/8/8 per class), made once per session."""
    from pipeline.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(
        tmp_path_factory.mktemp("data") / "synthetic", sizes=(16, 8, 8), image_size=48, seed=0
    )


@pytest.fixture(scope="session")
def tiny_run(synthetic_dataset, tmp_path_factory):
    """A scratch run trained for one epoch on the synthetic dataset: enough to look at."""
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    config = ScratchConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path_factory.mktemp("models"), image_size=48,
        training=TrainingOptions(epochs=1, batch_size=8, learning_rate=1e-3),
    )
    return train_scratch(config, verbose=0)


@pytest.fixture
def open_png():
    """``open_png(path, min_size=(w, h))``: the PNG as an array, checked to be a real picture."""

    def check(path: Path, min_size: tuple[int, int] = (100, 100)) -> np.ndarray:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= min_size[0] and image.height >= min_size[1]
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        assert pixels.std() > 10, f"{path} looks blank"
        return pixels

    return check
