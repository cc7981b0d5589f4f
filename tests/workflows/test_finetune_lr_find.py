"""The learning-rate finder: a sweep of fine-tuning rates, a plot, a suggestion in range."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.models.heads import HeadOptions
from pipeline.training.options import TrainingOptions
from pipeline.workflows.extract.workflow import ExtractConfig, run_extract
from pipeline.workflows.lr_find import LrFindConfig, run_lr_find, suggest_rate


@pytest.fixture(scope="module")
def extract_run(synthetic_dataset, tmp_path_factory):
    return run_extract(ExtractConfig(
        data_dir=synthetic_dataset, models_dir=tmp_path_factory.mktemp("lrf"), weights="none",
        image_size=48, head_options=HeadOptions(dense=16),
        training=TrainingOptions(epochs=1, batch_size=8),
    ), verbose=0)


def test_lr_find_writes_its_plot_and_suggests_a_rate_in_the_swept_range(
        extract_run, tmp_path, open_png):
    result = run_lr_find(LrFindConfig(
        source_run=extract_run.path, models_dir=extract_run.path.parent, min_lr=1e-6,
        max_lr=1.0, steps=12, batch_size=8, output=tmp_path), verbose=0)
    assert 1e-6 <= result.suggestion <= 1.0
    assert result.suggestion in result.rates
    assert result.rates[0] == pytest.approx(1e-6) and np.all(np.diff(result.rates) > 0)
    open_png(result.plot)
    saved = json.loads(result.record.read_text())
    assert saved["suggestion"] == result.suggestion and len(saved["losses"]) == len(result.rates)


def test_the_suggestion_is_where_the_loss_falls_fastest_before_its_minimum():
    rates = list(np.geomspace(1e-5, 1e-1, 9))
    smoothed = [1.0, 0.99, 0.95, 0.6, 0.5, 0.45, 0.44, 2.0, 9.0]  # steepest: 0.95 -> 0.6
    assert suggest_rate(rates, smoothed) in rates[2:4]


def test_a_reversed_range_is_refused(extract_run):
    with pytest.raises(PipelineError, match="`min_lr`"):
        run_lr_find(LrFindConfig(source_run=extract_run.path, min_lr=1e-2, max_lr=1e-3))
