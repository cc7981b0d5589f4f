"""`run`: every step into one folder, each done once, resumable after SIGTERM, then a report.

Trained for real on the generated 48 px dataset with a randomly initialised VGG16 at 32 px
(no weights to fetch), two epochs a step: seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from pipeline.data.manifest import manifest_checksum
from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import CHAPTER_RECORD, read_record
from pipeline.runs.folder import BEST_MODEL, Run
from pipeline.workflows.chapter.plan import ChapterConfig, make_plan
from pipeline.workflows.chapter.presets import (
    MEDIUM_DATASET,
    RECOMMENDED_BASE,
    SECOND_BASE,
    SMALL_DATASET,
    STEP_ENSEMBLE,
    STEP_EVALUATE,
    STEP_EXTRACT,
    STEP_EXTRACT_SECOND,
    STEP_FINETUNE,
    STEP_FINETUNE_SECOND,
)

REPO = Path(__file__).resolve().parents[2]
FAST = ["--base", "vgg16", "--weights", "none", "--image-size", "32", "--batch-size", "8",
        "--no-augment", "--steps", "extract,finetune,evaluate"]


def _run(args: list[str]):
    result = CliRunner().invoke(main, ["run", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def chapter(synthetic_dataset, tmp_path_factory):
    """One `run` of extract, finetune and evaluate, two epochs each."""
    models = tmp_path_factory.mktemp("run-models")
    args = ["--data", str(synthetic_dataset), "--models-dir", str(models), "--run-name", "ch",
            "--epochs", "2", *FAST]
    result = _run(args)
    return models / "ch", args, result.output


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


# -- the plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("images", "steps", "unfreeze"), [
    (2_000, (STEP_EXTRACT, STEP_FINETUNE, STEP_EXTRACT_SECOND, STEP_FINETUNE_SECOND,
             STEP_ENSEMBLE, STEP_EVALUATE), "all"),
    (SMALL_DATASET, (STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE), "top"),
    (MEDIUM_DATASET, (STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE), "all"),
])
def test_the_rule_of_thumb_trains_more_of_the_base_the_more_images(images, steps, unfreeze):
    plan = make_plan(ChapterConfig(), images)
    assert plan.decided_by == "rule of thumb" and plan.steps == steps
    if unfreeze:
        assert plan.unfreeze == unfreeze
    assert f"{images:,}" in plan.reason


def test_every_preset_value_can_be_overridden():
    quick = make_plan(ChapterConfig(preset="cpu-quick"), 2_000)
    assert (quick.base, quick.image_size, quick.steps) == (
        "efficientnet_lite1", 240, (STEP_EXTRACT, STEP_FINETUNE, STEP_EVALUATE))
    changed = make_plan(ChapterConfig(preset="cpu-quick", base="vgg16", image_size=64,
                                      epochs={STEP_EXTRACT: 1}, unfreeze="all",
                                      steps=("extract",)), 2_000)
    assert (changed.base, changed.image_size, changed.unfreeze) == ("vgg16", 64, "all")
    assert changed.steps == (STEP_EXTRACT,) and changed.epochs == {STEP_EXTRACT: 1}


def test_finetune_alone_brings_its_extract_step():
    assert make_plan(ChapterConfig(steps=("finetune",)), 100).steps == (STEP_EXTRACT,
                                                                         STEP_FINETUNE)


def test_the_ensemble_brings_both_bases_and_a_second_base_unlike_the_first():
    plan = make_plan(ChapterConfig(steps=("ensemble",)), 100)
    assert plan.steps == (STEP_EXTRACT, STEP_FINETUNE, STEP_EXTRACT_SECOND,
                          STEP_FINETUNE_SECOND, STEP_ENSEMBLE)
    assert (plan.base, plan.second_base) == (RECOMMENDED_BASE, SECOND_BASE)
    lite0 = make_plan(ChapterConfig(steps=("ensemble",), base=SECOND_BASE), 100)
    assert lite0.second_base == RECOMMENDED_BASE
    given = make_plan(ChapterConfig(base="vgg16", second_base="efficientnet_lite2"), 100)
    assert given.second_base == "efficientnet_lite2"
    assert make_plan(ChapterConfig(preset="cpu-quick"), 100).second_base is None
    # `all` is still the book's chapter: its five strategies, no second base.
    assert STEP_ENSEMBLE not in make_plan(ChapterConfig(steps=("all",)), 100).steps


# -- one chapter --------------------------------------------------------------------------------


def test_run_trains_every_step_into_one_folder_then_reports(chapter):
    parent, _, output = chapter
    record = read_record(parent)
    assert record.status == "completed"
    assert {name: state.status for name, state in record.steps.items()} == {
        STEP_EXTRACT: "completed", STEP_FINETUNE: "completed", STEP_EVALUATE: "completed"}
    for step in (STEP_EXTRACT, STEP_FINETUNE):
        run = Run.open(parent / step)
        assert run.record().status == "completed" and run.record().epochs_run == 2
        assert (parent / step / "evaluation-test" / "confusion_matrix.json").is_file()
        test_accuracy = run.read_metrics()["test"]["accuracy"]
        shown = re.search(rf"^  {step} +(\S+%) ", output, re.MULTILINE).group(1)
        assert shown == f"{100 * test_accuracy:.1f}%"
    assert Path(Run.open(parent / STEP_FINETUNE).record().parent_run) == parent / STEP_EXTRACT
    html = (parent / "report.html").read_text()
    strategies = html.split('<table id="strategies">')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(.*?)</td>", strategies) == [STEP_EXTRACT, STEP_FINETUNE]
    assert "report.html" in output and "rule of thumb" not in output


def test_a_second_run_skips_the_completed_steps(chapter):
    parent, args, _ = chapter
    before = {step: _mtime(parent / step / BEST_MODEL) for step in (STEP_EXTRACT, STEP_FINETUNE)}
    output = _run(args).output
    assert output.count("done before with the same inputs") == 2
    assert {step: _mtime(parent / step / BEST_MODEL) for step in before} == before


def test_a_step_done_before_finetunes_flags_changed_meaning_is_still_done(chapter,
                                                                          synthetic_dataset):
    # Before, `--views 0` said "no augmentation": the chapter's record holds the digest of that
    # config and the finetune run's config.json (version 2) says views 0, augment False.
    from pipeline.data.manifest import require_prepared
    from pipeline.training.config import config_to_dict
    from pipeline.workflows.chapter.workflow import step_config

    parent, args, _ = chapter
    record = read_record(parent)
    manifest = require_prepared(synthetic_dataset)
    config = ChapterConfig(data_dir=synthetic_dataset, models_dir=parent.parent,
                           run_name=parent.name, base="vgg16", weights="none", image_size=32,
                           batch_size=8, augment=False, epochs=dict.fromkeys(
                               ("extract", "finetune"), 2), steps=("extract", "finetune",
                                                                   "evaluate"))
    finetune = step_config(STEP_FINETUNE, parent, config, make_plan(config, 32))
    old = {**config_to_dict(finetune), "augment": False, "views": 0}
    old["training"].pop("class_weight")  # the option came later still: not in old digests
    for later in ("label_smoothing", "mixup", "cutmix", "layer_decay"):  # and these later again
        old["training"].pop(later)
    for later in ("drop_path", "start_size"):  # fine-tuning's own, later still
        old.pop(later)
    old_digest = hashlib.sha256(json.dumps(
        {"config": old, "data": manifest_checksum(manifest),
         "depends_on": record.steps[STEP_EXTRACT].digest}, sort_keys=True).encode()).hexdigest()
    chapter_json = json.loads((parent / CHAPTER_RECORD).read_text())
    chapter_json["steps"][STEP_FINETUNE]["digest"] = old_digest
    chapter_json["steps"][STEP_FINETUNE]["evaluated"] = old_digest
    (parent / CHAPTER_RECORD).write_text(json.dumps(chapter_json))
    run_json = json.loads((parent / STEP_FINETUNE / "config.json").read_text())
    run_json["version"] = 2
    run_json["config"].update(augment=False, views=0)
    (parent / STEP_FINETUNE / "config.json").write_text(json.dumps(run_json))
    before = _mtime(parent / STEP_FINETUNE / BEST_MODEL)

    output = _run(args).output
    assert output.count("done before with the same inputs") == 2
    assert _mtime(parent / STEP_FINETUNE / BEST_MODEL) == before
    assert read_record(parent).steps[STEP_FINETUNE].digest != old_digest  # now the new one
    assert Run.open(parent / STEP_FINETUNE).record().config["augment"] is False


def test_changed_inputs_redo_only_the_steps_they_change(chapter):
    parent, args, _ = chapter
    extract_model = _mtime(parent / STEP_EXTRACT / BEST_MODEL)
    changed = [*args[:args.index("--epochs")], "--epochs", "extract=2,finetune=3",
               *args[args.index("--epochs") + 2:]]
    _run(changed)
    assert _mtime(parent / STEP_EXTRACT / BEST_MODEL) == extract_model
    assert Run.open(parent / STEP_FINETUNE).record().epochs_run == 3


def test_a_mistake_names_the_flag(synthetic_dataset, tmp_path):
    result = CliRunner().invoke(main, ["run", "--data", str(synthetic_dataset), "--models-dir",
                                       str(tmp_path), "--steps", "extract,pretrain"])
    assert result.exit_code == 2 and "--steps" in result.output and "pretrain" in result.output
    from pipeline.workflows.chapter.workflow import run_chapter

    with pytest.raises(PipelineError, match="`epochs` of extract"):
        run_chapter(ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path,
                              epochs={"extract": 0}))


def test_the_strategy_reaches_every_training_step(synthetic_dataset, tmp_path):
    from pipeline.workflows.chapter.workflow import run_chapter, step_config

    config = ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path, strategy="one")
    plan = make_plan(config, train_images=100)
    for step in plan.steps:
        if step not in ("evaluate", "ensemble"):  # the ensemble does not train
            assert step_config(step, tmp_path, config, plan).training.strategy == "one"
    with pytest.raises(PipelineError, match="`strategy` 'ring'"):
        run_chapter(ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path, strategy="ring"))


def test_the_scratch_steps_train_the_architecture_asked_at_its_own_size(synthetic_dataset,
                                                                          tmp_path):
    from pipeline.workflows.chapter.workflow import run_chapter, step_config

    # A preset's size is its conv base's: the scratch model keeps its own unless one is given.
    classic = ChapterConfig(data_dir=synthetic_dataset, preset="classic",
                        architecture="mini_xception")
    plan = make_plan(classic, train_images=2_000)
    scratch = step_config("scratch-augment", tmp_path, classic, plan)
    assert (scratch.architecture, scratch.image_size, scratch.dropout) == ("mini_xception", 180,
                                                                            0.5)
    assert step_config("extract", tmp_path, classic, plan).image_size == 150
    book = ChapterConfig(data_dir=synthetic_dataset, preset="classic")
    assert step_config("scratch", tmp_path, book, plan).image_size == 150
    given = ChapterConfig(data_dir=synthetic_dataset, preset="cpu-quick", image_size=40,
                      architecture="mini_xception")
    assert step_config("scratch", tmp_path, given, make_plan(given, 2_000)).image_size == 40
    with pytest.raises(PipelineError, match="`architecture` 'resnet'"):
        run_chapter(ChapterConfig(data_dir=synthetic_dataset, models_dir=tmp_path,
                              architecture="resnet"))


def test_run_trains_a_mini_xception_from_scratch(synthetic_dataset, tmp_path):
    _run(["--data", str(synthetic_dataset), "--models-dir", str(tmp_path), "--run-name", "mx",
          "--steps", "scratch", "--architecture", "mini_xception", "--image-size", "32",
          "--epochs", "1", "--batch-size", "8"])
    record = Run.open(tmp_path / "mx" / "scratch").record()
    assert record.status == "completed"
    assert (record.config["architecture"], record.config["image_size"]) == ("mini_xception", 32)
    assert read_record(tmp_path / "mx").status == "completed"
    # The book's reference numbers are its first-edition convnet's: none for this model.
    row = next(line for line in (tmp_path / "mx" / "report.md").read_text().splitlines()
               if line.startswith("| scratch |"))
    assert r"| scratch (mini\_xception) |" in row and row.rstrip(" |").endswith("—")


# -- interrupted and resumed ------------------------------------------------------------------


def _wait_for(condition, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"run ended early:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.2)


def test_sigterm_mid_step_then_the_same_command_resumes(synthetic_dataset, tmp_path):
    parent = tmp_path / "models" / "resume"
    command = [sys.executable, "cli.py", "run", "--data", str(synthetic_dataset),
               "--models-dir", str(tmp_path / "models"), "--run-name", "resume",
               "--epochs", "extract=2,finetune=40", "--no-report", *FAST]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)

    def finetune_training() -> bool:
        try:
            record = json.loads((parent / CHAPTER_RECORD).read_text())
        except (OSError, ValueError):
            return False
        state = record["steps"].get(STEP_FINETUNE, {}).get("status")
        return state == "running" and (parent / STEP_FINETUNE / "history.json").is_file()

    _wait_for(finetune_training, process)
    extract_model = _mtime(parent / STEP_EXTRACT / BEST_MODEL)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output  # 128 + SIGTERM, as a shell reports it
    record = read_record(parent)
    assert record.status == "interrupted"
    assert record.steps[STEP_EXTRACT].status == "completed"
    assert record.steps[STEP_FINETUNE].status == "interrupted"
    stopped_at = Run(parent / STEP_FINETUNE).record().epochs_run  # open() would warn: incomplete
    assert 1 <= stopped_at < 40

    # The step left interrupted is made afresh; a short one keeps the test cheap (the first
    # command needed many epochs only so that the signal lands mid-step).
    rerun = [arg.replace("finetune=40", "finetune=2") for arg in command]
    again = subprocess.run(rerun, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=400, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "== extract: done before with the same inputs" in again.stdout
    assert "== finetune: discarding" in again.stdout and "left interrupted" in again.stdout
    assert _mtime(parent / STEP_EXTRACT / BEST_MODEL) == extract_model  # not recomputed
    record = read_record(parent)
    assert record.status == "completed" and record.steps[STEP_FINETUNE].status == "completed"
    assert Run.open(parent / STEP_FINETUNE).record().epochs_run == 2
