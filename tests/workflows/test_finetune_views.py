"""Fine-tuning and extraction on cached augmented views: trained, resumed, reused, recorded."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.heads import HeadOptions
from pipeline.models.saving import load_model
from pipeline.models.schedules import ScheduleOptions
from pipeline.runs.folder import Run
from pipeline.training.options import TrainingOptions
from pipeline.workflows.extract.workflow import ExtractConfig, run_extract
from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

SIZE = 48


@pytest.fixture(scope="module")
def workspace(vgg16_workspace):
    return vgg16_workspace


@pytest.fixture(scope="module")
def extract_run(vgg16_extract_run) -> Run:
    """The session's VGG16 extract run (tests/workflows/conftest.py)."""
    return vgg16_extract_run


def finetune(extract_run, workspace, views, **changes):
    options = dict(source_run=extract_run.path, models_dir=workspace / "models", views=views,
                   training=TrainingOptions(epochs=2, batch_size=8))
    return run_finetune(FinetuneConfig(**{**options, **changes}), verbose=0)


@pytest.fixture(scope="module")
def views_run(extract_run, workspace):
    return finetune(extract_run, workspace, 2, lr_schedule=ScheduleOptions("cosine", 0.5))


def test_finetune_trains_the_top_on_cached_views_and_records_them(views_run, synthetic_dataset):
    record = views_run.record()
    assert record.status == "completed" and record.epochs_run == 2
    assert (record.views.views, record.views.computed, record.views.layer) == (2, 2,
                                                                               "block4_pool")
    assert (record.schedule, record.warmup_epochs) == ("cosine", 0.5)
    folder = views_run.path.parent / "features" / os.path.basename(record.views.path)
    views = [np.load(folder / f"view-{v:03d}.npy") for v in range(2)]
    assert views[0].shape == (32, 3, 3, 512) and not np.allclose(views[0], views[1])
    # Validation and test come from the plain cached features; training never did.
    assert set(record.cached_top.features) == {"validation", "test"}
    model = load_model(views_run.file("best.keras"), compile=True)
    data = load_split(synthetic_dataset, "validation", SIZE, 8)
    on_images = model.evaluate(data.dataset, verbose=0, return_dict=True)
    assert on_images["loss"] == pytest.approx(views_run.read_metrics()["validation"]["loss"],
                                              rel=1e-4)


def test_a_later_run_reuses_the_views_and_computes_only_the_missing_ones(
        views_run, extract_run, workspace):
    folder = views_run.record().views.path
    first = os.stat(os.path.join(folder, "view-000.npy")).st_mtime_ns
    more = finetune(extract_run, workspace, 3, training=TrainingOptions(
        epochs=1, batch_size=8))
    assert more.record().views.computed == 1 and more.record().views.path == folder
    assert os.stat(os.path.join(folder, "view-000.npy")).st_mtime_ns == first


def test_an_interrupted_view_computation_resumes_at_the_missing_view(
        views_run, extract_run, workspace):
    folder = views_run.record().views.path
    kept = np.load(os.path.join(folder, "view-000.npy"))
    os.remove(os.path.join(folder, "view-001.npy"))  # as if the run died writing view 1
    with open(os.path.join(folder, ".view-001.npy.tmp"), "wb") as half:
        half.write(b"half a view")
    resumed = finetune(extract_run, workspace, 2, training=TrainingOptions(
        epochs=1, batch_size=8))
    assert resumed.record().views.computed == 1
    assert not os.path.exists(os.path.join(folder, ".view-001.npy.tmp"))
    np.testing.assert_array_equal(np.load(os.path.join(folder, "view-000.npy")), kept)


def test_extract_with_augmentation_trains_on_the_views_finetune_uses(
        extract_run, views_run, synthetic_dataset, workspace):
    run = run_extract(ExtractConfig(
        data_dir=synthetic_dataset, models_dir=workspace / "models", weights="none",
        image_size=SIZE, head_options=HeadOptions(dense=16), augment=True, views=2,
        training=TrainingOptions(epochs=1, batch_size=8),
    ), verbose=0)
    record = run.record()
    assert record.views.path == views_run.record().views.path and record.views.computed == 0
    model = load_model(run.file("best.keras"), compile=True)
    assert model.input.shape == (None, SIZE, SIZE, 3)
    data = load_split(synthetic_dataset, "test", SIZE, 8)
    on_images = model.evaluate(data.dataset, verbose=0, return_dict=True)
    assert on_images["loss"] == pytest.approx(run.read_metrics()["test"]["loss"], rel=1e-4)


@pytest.mark.parametrize(("changes", "message"), [
    (dict(views=-1), "`views` -1"),
    (dict(lr_schedule=ScheduleOptions("linear")), "`schedule` 'linear'"),
    (dict(lr_schedule=ScheduleOptions("cosine", 5)), "`warmup_epochs` 5"),
])
def test_bad_options_are_refused_before_any_work(extract_run, workspace, changes, message):
    with pytest.raises(PipelineError, match=message):
        finetune(extract_run, workspace, **{"views": 2, **changes})


def test_cli_names_the_flag_of_a_bad_view_count(extract_run, workspace):
    from cli import main

    result = CliRunner().invoke(main, ["finetune", str(extract_run.path), "--views", "-2",
                                       "--models-dir", str(workspace / "models")])
    assert result.exit_code == 2 and "--views -2" in result.output
