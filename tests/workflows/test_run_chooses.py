"""`run` without a preset on a small dataset: extraction, then the whole base fine-tuned, then a
second base and the mean of the two, within the time budget, and the step that validates best
kept (issue 26).

Real runs on the session's tiny synthetic dataset: VGG16 without weights at 32 px, one epoch a
step, a few seconds each.
"""

from __future__ import annotations

import dataclasses
import json
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
from pipeline.workflows.chapter.choosing import CANDIDATES, keep_best
from pipeline.workflows.chapter.plan import (
    ChapterConfig,
    check_config,
    format_duration,
    make_plan,
    parse_duration,
    run_budget,
)
from pipeline.workflows.chapter.presets import (
    DEFAULT_BUDGET_SECONDS,
    STEP_ENSEMBLE,
    STEP_EVALUATE,
    STEP_EXTRACT,
    STEP_EXTRACT_SECOND,
    STEP_FINETUNE,
    STEP_FINETUNE_SECOND,
    WHOLE_BASE,
)
from pipeline.workflows.chapter.steps import step_config
from pipeline.workflows.chapter.workflow import run_chapter

TINY = dict(base="vgg16", second_base="vgg16", weights="none", image_size=32, batch_size=8,
            epochs=dict.fromkeys((STEP_EXTRACT, STEP_FINETUNE, STEP_EXTRACT_SECOND,
                                  STEP_FINETUNE_SECOND), 1), report=False)


def test_the_rule_of_thumb_tries_the_whole_base_with_the_measured_recipe(tmp_path):
    config = ChapterConfig(**TINY)
    plan = make_plan(config, 2_000)
    assert plan.keep_best and plan.unfreeze == "all"
    finetune = step_config(STEP_FINETUNE, tmp_path, config, plan)
    assert (finetune.training.optimizer, finetune.training.learning_rate) == (
        WHOLE_BASE.optimizer, WHOLE_BASE.learning_rate)
    assert finetune.lr_schedule.schedule == WHOLE_BASE.schedule
    assert finetune.views == WHOLE_BASE.views and finetune.augment
    assert finetune.training.label_smoothing == WHOLE_BASE.label_smoothing > 0
    with_data = ChapterConfig(**TINY, data_dir=tmp_path)
    extract = step_config(STEP_EXTRACT, tmp_path, with_data, plan)
    assert extract.training.label_smoothing == 0  # the recipe's, not every step's
    # The user's value is every step's, 0 included.
    for given in (0.0, 0.2):
        chosen = ChapterConfig(**TINY, data_dir=tmp_path, label_smoothing=given)
        for step in (STEP_EXTRACT, STEP_FINETUNE, STEP_FINETUNE_SECOND):
            assert step_config(step, tmp_path, chosen, plan).training.label_smoothing == given
    assert run_budget(config, plan) == DEFAULT_BUDGET_SECONDS
    # A preset or steps given: nothing is tried, no budget unless asked for.
    for chosen in (ChapterConfig(preset="cpu-quick"), ChapterConfig(steps=("extract",))):
        assert not make_plan(chosen, 2_000).keep_best
        assert run_budget(chosen, make_plan(chosen, 2_000)) is None
    assert run_budget(ChapterConfig(preset="classic", budget=60), make_plan(
        ChapterConfig(preset="classic"), 2_000)) == 60


def test_the_fine_tuning_steps_drop_paths_only_when_asked(tmp_path):
    plain = ChapterConfig(data_dir=tmp_path)  # the rule of thumb's Lite1 and Lite0, whole base
    plan = make_plan(plain, 800)
    for step in (STEP_FINETUNE, STEP_FINETUNE_SECOND):
        assert step_config(step, tmp_path, plain, plan).drop_path == 0  # tied on validation
        dropping = ChapterConfig(data_dir=tmp_path, drop_path=0.1)
        assert step_config(step, tmp_path, dropping, plan).drop_path == 0.1
    with pytest.raises(PipelineError, match=r"`drop_path` 1\.5: give the last residual"):
        check_config(ChapterConfig(data_dir=tmp_path, drop_path=1.5))


def test_the_best_preset_measures_every_candidate_on_a_dataset_of_any_size(tmp_path):
    # 50,000 photos: the rule of thumb would only fine-tune; `best` still tries every candidate.
    config = ChapterConfig(preset="best", data_dir=tmp_path)
    plan = make_plan(config, 50_000)
    assert plan.keep_best and plan.unfreeze == "all" and plan.decided_by == "preset best"
    assert set(CANDIDATES) <= set(plan.steps) and plan.steps[-1] == STEP_EVALUATE
    assert plan.image_size is None  # each base at its own size
    assert (plan.base, plan.second_base) == ("efficientnet_lite1", "efficientnet_lite0")
    finetune = step_config(STEP_FINETUNE_SECOND, tmp_path, config, plan)
    assert (finetune.training.optimizer, finetune.training.learning_rate) == (
        WHOLE_BASE.optimizer, WHOLE_BASE.learning_rate)
    assert finetune.training.label_smoothing == WHOLE_BASE.label_smoothing
    assert step_config(STEP_EXTRACT_SECOND, tmp_path, config, plan).image_size is None
    assert run_budget(config, plan) == DEFAULT_BUDGET_SECONDS
    # On a small dataset it is the rule of thumb's plan, whose runs docs/results.md measured.
    small, rule = make_plan(config, 800), make_plan(ChapterConfig(data_dir=tmp_path), 800)
    assert (small.steps, small.unfreeze, small.base, small.second_base, small.image_size) == (
        rule.steps, rule.unfreeze, rule.base, rule.second_base, rule.image_size)
    # Steps named with it: still the best of those is kept.
    fewer = ChapterConfig(preset="best", steps=("extract", "finetune"), data_dir=tmp_path)
    assert make_plan(fewer, 50_000).keep_best


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
    for step in (STEP_FINETUNE, STEP_EXTRACT_SECOND, STEP_FINETUNE_SECOND):
        assert record.steps[step].status == "skipped"
        assert "budget" in record.steps[step].reason
        assert not (tmp_path / "ch" / step).exists()
    # The ensemble is skipped for want of its members, whatever the budget.
    assert record.steps[STEP_ENSEMBLE].status == "skipped"
    assert record.steps[STEP_ENSEMBLE].reason == f"{STEP_FINETUNE} did not train"
    assert record.kept == STEP_EXTRACT and "the only step" in record.kept_reason
    assert (tmp_path / "ch" / STEP_EXTRACT / "evaluation-test").is_dir()
    assert "kept: extract" in result.summary()


def test_with_time_every_step_trains_and_the_best_on_validation_is_kept(synthetic_dataset,
                                                                        tmp_path):
    config = ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path, run_name="ch",
                           budget=3600, **TINY)
    run_chapter(config, verbose=0)
    parent = tmp_path / "ch"
    record = read_record(parent)
    accuracy = {step: Run(parent / step).read_metrics()["validation"]["accuracy"]
                for step in CANDIDATES}
    best = max(CANDIDATES, key=lambda step: (accuracy[step], -CANDIDATES.index(step)))
    assert record.kept == best and f"{accuracy[best]:.1%}" in record.kept_reason
    assert keep_best(parent, set(CANDIDATES))[0] == best
    assert keep_best(parent, {STEP_EXTRACT})[0] == STEP_EXTRACT
    for step in (STEP_FINETUNE, STEP_FINETUNE_SECOND):
        finetune = Run(parent / step).record()
        assert finetune.config["training"]["optimizer"] == WHOLE_BASE.optimizer
    assert Run(parent / STEP_FINETUNE_SECOND).record().parent_run == str(
        parent / STEP_EXTRACT_SECOND)
    ensemble = Run(parent / STEP_ENSEMBLE).record()
    assert ensemble.kind == "ensemble" and ensemble.config["members"] == [
        str((parent / step).resolve()) for step in (STEP_FINETUNE, STEP_FINETUNE_SECOND)]
    for step in CANDIDATES:
        assert (parent / step / "evaluation-test").is_dir()
    # The same command again: every step done, nothing trained or rebuilt.
    before = (parent / STEP_ENSEMBLE / "best.keras").stat().st_mtime_ns
    result = run_chapter(config, verbose=0)
    assert all(step.skipped for step in result.steps)
    assert (parent / STEP_ENSEMBLE / "best.keras").stat().st_mtime_ns == before


def test_a_finetune_step_without_drop_path_or_start_size_keeps_its_digest(synthetic_dataset,
                                                                          tmp_path):
    import hashlib

    from pipeline.data.manifest import manifest_checksum, read_manifest
    from pipeline.training.config import config_to_dict
    from pipeline.workflows.chapter.steps import step_digest

    manifest = read_manifest(synthetic_dataset)
    config = ChapterConfig(preset="cpu-quick", data_dir=synthetic_dataset)
    step = step_config(STEP_FINETUNE, tmp_path, config, make_plan(config, 32))
    old = config_to_dict(step)  # as recorded before the two options existed
    del old["drop_path"], old["start_size"]
    for later in ("class_weight", "label_smoothing", "mixup", "cutmix", "layer_decay"):
        old["training"].pop(later, None)
    before = hashlib.sha256(json.dumps(
        {"config": old, "data": manifest_checksum(manifest), "depends_on": STEP_EXTRACT},
        sort_keys=True).encode()).hexdigest()
    assert step_digest(step, manifest, STEP_EXTRACT) == before
    dropping = dataclasses.replace(step, drop_path=0.1)
    assert step_digest(dropping, manifest, STEP_EXTRACT) != before
