"""`run` and the splits it gets: no test split skips evaluation truthfully, no validation split
is refused before anything is prepared, and the summary shows every evaluated step's number.

From a flat folder of generated 48 px photos (`run --source`), one epoch of the book's
convnet at 48 px: a couple of seconds a run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from pipeline.data.synth import write_synthetic_dataset
from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import read_record
from pipeline.runs.folder import Run
from pipeline.workflows.chapter.plan import ChapterConfig, make_plan
from pipeline.workflows.chapter.result import ChapterResult, StepResult, step_test_accuracy
from pipeline.workflows.chapter.workflow import run_chapter

SCRATCH = ["--steps", "scratch,evaluate", "--image-size", "48", "--epochs", "1",
           "--batch-size", "8"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A flat source: photos/<class>/*.jpg, 10 per class (no split of its own)."""
    made = write_synthetic_dataset(tmp_path_factory.mktemp("synth") / "made", sizes=(6, 2, 2),
                                   image_size=48)
    source = tmp_path_factory.mktemp("source") / "photos"
    for path in made.rglob("*.jpg"):
        (source / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, source / path.parent.name / path.name)
    return source


def _run(tmp_path: Path, photos: Path, *args: str):
    return CliRunner().invoke(main, ["run", "--source", str(photos), "--data",
                                     str(tmp_path / "data" / "photos"), "--models-dir",
                                     str(tmp_path / "models"), "--run-name", "ch", *args])


def test_without_a_test_split_evaluate_is_skipped_and_recorded_so(photos, tmp_path):
    result = _run(tmp_path, photos, "--split-sizes", "6", "2", "0", *SCRATCH)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "== evaluate: skipped (no test split: nothing to evaluate)" in result.output
    assert "evaluate: skipped (no test split: nothing to evaluate)" in \
        result.output.split("run: ")[-1]  # said again in the summary
    parent = tmp_path / "models" / "ch"
    record = read_record(parent)
    assert record.status == "completed"
    assert record.steps["evaluate"].status == "skipped"
    assert record.steps["evaluate"].reason == "no test split: nothing to evaluate"
    assert record.steps["scratch"].evaluated is None
    assert not (parent / "scratch" / "evaluation-test").exists()
    assert "scratch" in (parent / "report.md").read_text()  # the report still works

    report = CliRunner().invoke(main, ["report", str(parent), "-o", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "r.html").is_file()


@pytest.mark.parametrize(("option", "values"), [
    ("--split-sizes", ["6", "0", "2"]), ("--split-sizes", ["6", "0", "0"]),
    ("--split", ["1,0,0"]), ("--split", ["0.8,0,0.2"]),
])
def test_a_split_without_validation_is_refused_before_preparing(photos, tmp_path, option,
                                                                values):
    result = _run(tmp_path, photos, option, *values, *SCRATCH)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{option} {' '.join(values)}" in line and "validation split" in line
    assert f"give {option} a validation share above 0" in line
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_a_prepared_dataset_without_validation_is_refused_before_training(tmp_path):
    data = write_synthetic_dataset(tmp_path / "novalidation", sizes=(4, 0, 2), image_size=48)
    config = ChapterConfig(data_dir=data, models_dir=tmp_path / "models", run_name="ch",
                           steps=("scratch",), image_size=48, epochs={"scratch": 1})
    with pytest.raises(PipelineError, match="the validation split is empty, but every "
                                            "training step needs one"):
        run_chapter(config, verbose=0)
    assert not (tmp_path / "models" / "ch").exists()  # nothing was started


def test_the_summary_shows_the_test_accuracy_of_a_step_evaluated_by_run(tiny_run, tmp_path):
    # A scratch run evaluates only validation while training: its test number is the one
    # `run`'s evaluate step writes into evaluation-test/ (as for this copy of a scratch run).
    from pipeline.evaluation.evaluate import evaluate_run

    step = tmp_path / "ch" / "scratch"
    # Without the evaluations other tests may have written into the shared run.
    shutil.copytree(tiny_run.path, step, ignore=shutil.ignore_patterns("evaluation-*"))
    assert "test" not in Run(step).read_metrics()
    assert step_test_accuracy(step) is None  # not evaluated: no number
    accuracy = evaluate_run(step, "test", out_dir=step / "evaluation-test").metrics["accuracy"]
    assert step_test_accuracy(step) == pytest.approx(accuracy)

    plan = make_plan(ChapterConfig(steps=("scratch", "evaluate")), 32)
    summary = ChapterResult(step.parent, plan, (
        StepResult("scratch", step, "completed", False, 2.0, step_test_accuracy(step)),
    )).summary()
    shown = re.search(r"^  scratch +(\S+) ", summary, re.MULTILINE).group(1)
    assert shown == f"{100 * accuracy:.1f}%"


def test_a_damaged_evaluation_is_one_line(tiny_run, tmp_path):
    step = tmp_path / "scratch"
    shutil.copytree(tiny_run.path, step, ignore=shutil.ignore_patterns("evaluation-*"))
    (step / "evaluation-test").mkdir()
    (step / "evaluation-test" / "metrics.json").write_text('{"accuracy": "high"}')
    with pytest.raises(PipelineError, match="`accuracy` is 'high', not a number"):
        step_test_accuracy(step)


def test_the_summary_of_run_shows_each_evaluated_steps_test_accuracy(photos, tmp_path):
    """End to end: the number `run` prints is the one its evaluate step wrote, also when the
    step is done before and only the summary is made again."""
    for again in (False, True):
        result = _run(tmp_path, photos, "--split-sizes", "6", "2", "2", *SCRATCH)
        assert result.exit_code == 0, result.output + repr(result.exception)
        written = tmp_path / "models" / "ch" / "scratch" / "evaluation-test" / "metrics.json"
        accuracy = json.loads(written.read_text())["accuracy"]
        line = re.search(r"^  scratch +(\S+) .*$", result.output.split("run: ")[-1],
                         re.MULTILINE)
        assert line.group(1) == f"{100 * accuracy:.1f}%", line.group(0)
        assert line.group(0).endswith("(done before)") == again
