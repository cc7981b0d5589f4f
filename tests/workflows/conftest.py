"""Fixtures of the workflow tests: the extract run that the fine-tuning tests continue."""

from __future__ import annotations

from pathlib import Path

import pytest

SIZE = 48  # the generated photos' own size


@pytest.fixture(scope="session")
def vgg16_workspace(tmp_path_factory) -> Path:
    """The folder whose ``models/`` holds ``vgg16_extract_run`` and the runs made from it (its
    feature and view caches too, so that a fine-tuning reuses what the extraction computed)."""
    return tmp_path_factory.mktemp("vgg16-extract")


@pytest.fixture(scope="session")
def vgg16_extract_run(synthetic_dataset, vgg16_workspace):
    """A randomly initialised VGG16 extract run at ``SIZE`` px with a 16-unit dense head, one
    epoch: what tests/workflows/test_finetune*.py fine-tune, trained once per session."""
    from pipeline.models.heads import HeadOptions
    from pipeline.training.options import TrainingOptions
    from pipeline.workflows.extract.workflow import ExtractConfig, run_extract

    return run_extract(ExtractConfig(
        data_dir=synthetic_dataset, models_dir=vgg16_workspace / "models", weights="none",
        image_size=SIZE, head_options=HeadOptions(dense=16),
        training=TrainingOptions(epochs=1, batch_size=8),
    ), verbose=0)
