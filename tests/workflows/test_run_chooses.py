"""`run` without a preset on a small dataset: extraction, then the whole base fine-tuned within
the time budget, and the step that validates better kept (issue 26).

Real runs on the session's tiny synthetic dataset: VGG16 without weights at 32 px, one epoch a
step, a few seconds each.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import read_record
from pipeline.runs.folder import Run
from pipeline.training.callbacks import TimeBudget
from pipeline.workflows.chapter.choosing import keep_better
from pipeline.workflows.chapter.plan import (
    ChapterConfig,
    format_duration,
    make_plan,
    parse_duration,
    run_budget,
)
from pipeline.workflows.chapter.presets import (
    DEFAULT_BUDGET_SECONDS,
    STEP_EXTRACT,
    STEP_FINETUNE,
    WHOLE_BASE,
)
from pipeline.workflows.chapter.steps import step_config
from pipeline.workflows.chapter.workflow import run_chapter

TINY = dict(base="vgg16", weights="none", image_size=32, batch_size=8,
            epochs={STEP_EXTRACT: 1, STEP_FINETUNE: 1}, report=False)


def test_the_rule_of_thumb_tries_the_whole_base_with_the_measured_recipe(tmp_path):
    config = ChapterConfig(**TINY)
    plan = make_plan(config, 2_000)
    assert plan.keep_best and plan.unfreeze == "all"
    finetune = step_config(STEP_FINETUNE, tmp_path, config, plan)
    assert (finetune.training.optimizer, finetune.training.learning_rate) == (
        WHOLE_BASE.optimizer, WHOLE_BASE.learning_rate)
    assert finetune.lr_schedule.schedule == WHOLE_BASE.schedule
    assert finetune.views == WHOLE_BASE.views and finetune.augment
    assert run_budget(config, plan) == DEFAULT_BUDGET_SECONDS
    # A preset or steps given: nothing is tried, no budget unless asked for.
    for chosen in (ChapterConfig(preset="cpu-quick"), ChapterConfig(steps=("extract",))):
        assert not make_plan(chosen, 2_000).keep_best
        assert run_budget(chosen, make_plan(chosen, 2_000)) is None
    assert run_budget(ChapterConfig(preset="classic", budget=60), make_plan(
        ChapterConfig(preset="classic"), 2_000)) == 60


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("1h", 3600), ("90s", 90),
                                                ("900", 900), (" 1.5M ", 90)])
def test_budgets_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "inf", "nanm"])
def test_a_budget_that_is_no_time_is_one_line(text):
    with pytest.raises(PipelineError, match="`budget`"):
        parse_duration(text)


def test_the_command_line_refuses_a_bad_budget_before_any_work(tmp_path):
    result = CliRunner().invoke(main, ["run", "--budget", "soon", "--models-dir",
                                       str(tmp_path)])
    assert result.exit_code == 2 and "soon" in result.output
    assert not any(tmp_path.iterdir())


def test_the_time_budget_stops_between_epochs():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((8, 4), "float32")

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.2)

    budget = TimeBudget(time.monotonic() + 0.5)
    history = model.fit(x, x[:, :1], epochs=20, verbose=0, callbacks=[Slow(), budget])
    assert len(history.epoch) == budget.stopped_after
    assert 1 <= budget.stopped_after <= 3  # 0.2 s an epoch: the next would pass 0.5 s


def test_a_spent_budget_skips_fine_tuning_and_keeps_extraction(synthetic_dataset, tmp_path):
    config = ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path, run_name="ch",
                           budget=0.001, **TINY)
    result = run_chapter(config, verbose=0)
    record = read_record(tmp_path / "ch")
    assert record.steps[STEP_FINETUNE].status == "skipped"
    assert "budget" in record.steps[STEP_FINETUNE].reason
    assert record.kept == STEP_EXTRACT and "did not run" in record.kept_reason
    assert not (tmp_path / "ch" / STEP_FINETUNE).exists()
    assert (tmp_path / "ch" / STEP_EXTRACT / "evaluation-test").is_dir()
    assert "kept: extract" in result.summary()


def test_with_time_both_train_and_the_better_on_validation_is_kept(synthetic_dataset, tmp_path):
    config = ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path, run_name="ch",
                           budget=3600, **TINY)
    run_chapter(config, verbose=0)
    record = read_record(tmp_path / "ch")
    accuracy = {step: Run(tmp_path / "ch" / step).read_metrics()["validation"]["accuracy"]
                for step in (STEP_EXTRACT, STEP_FINETUNE)}
    better = STEP_FINETUNE if accuracy[STEP_FINETUNE] > accuracy[STEP_EXTRACT] else STEP_EXTRACT
    assert record.kept == better
    assert keep_better(tmp_path / "ch", {STEP_EXTRACT, STEP_FINETUNE})[0] == better
    assert keep_better(tmp_path / "ch", {STEP_EXTRACT})[0] == STEP_EXTRACT
    finetune = Run(tmp_path / "ch" / STEP_FINETUNE).record()
    assert finetune.config["training"]["optimizer"] == WHOLE_BASE.optimizer
    assert (tmp_path / "ch" / STEP_FINETUNE / "evaluation-test").is_dir()
