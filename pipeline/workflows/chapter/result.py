"""What ``run`` did, for people: each step's outcome, its test accuracy, the report.

The test accuracy shown is the one the report shows (``pipeline.report.from_runs``): what
``run``'s evaluate step wrote into ``<step>/evaluation-test/``, else the run's own test
metrics when its training evaluated the test split.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.workflows.chapter.plan import Plan

EVALUATION_SPLIT = "test"
EVALUATION_FOLDER = f"evaluation-{EVALUATION_SPLIT}"
NO_TEST_SPLIT = "no test split: nothing to evaluate"  # why the evaluate step is skipped
BUDGET_SPENT = "the time budget was spent (--budget)"  # why a training step is skipped


@dataclass(frozen=True)
class StepResult:
    name: str
    path: Path
    status: str
    skipped: bool
    seconds: float | None
    test_accuracy: float | None


@dataclass(frozen=True)
class ChapterResult:
    """What ``run_chapter`` did: the parent folder, the plan, each step, the report.

    ``evaluation``: the evaluate step's outcome when it did not evaluate (``skipped: <why>``);
    None when it evaluated or was not planned.
    """

    path: Path
    plan: Plan
    steps: tuple[StepResult, ...]
    report: tuple[Path, ...] = ()
    evaluation: str | None = None
    kept: str | None = None  # the step kept and why, when the plan tried several

    def summary(self) -> str:
        from pipeline.report.table import duration, percent

        lines = [f"run: {self.path}", f"  plan ({self.plan.decided_by}): {self.plan.reason}",
                 f"  {'step':<16} {'test accuracy':>13} {'wall time':>12}  folder"]
        for step in self.steps:
            took = "—" if step.seconds is None else duration(step.seconds)
            note = " (done before)" if step.skipped else ""
            lines.append(f"  {step.name:<16} {percent(step.test_accuracy):>13} {took:>12}  "
                         f"{step.path}{note}")
        if self.evaluation:
            lines.append(f"  evaluate: {self.evaluation}")
        if self.kept:
            lines.append(f"  kept: {self.kept}")
        lines += [f"  report: {path}" for path in self.report]
        return "\n".join(lines)


def step_test_accuracy(folder: Path) -> float | None:
    """The test accuracy of the completed run in ``folder``, as the report shows it; None
    when it was not evaluated on the test split.

    What the evaluate step measured on the saved model comes first: that is the model users
    get, and the number ``run`` printed as it evaluated. The run's own test metrics (taken
    while training, in its training precision and graph, so a photo may fall the other way
    in bfloat16) stand in when the step did not evaluate.
    """
    from pipeline.runs.folder import Run

    value = _evaluated_accuracy(folder / EVALUATION_FOLDER / "metrics.json")
    if value is None or math.isnan(value):
        value = Run(folder).read_metrics().get(EVALUATION_SPLIT, {}).get("accuracy")
    return None if value is None or math.isnan(value) else float(value)


def _evaluated_accuracy(path: Path) -> float | None:
    """``accuracy`` of what ``evaluate`` wrote at ``path``; None when it is not there."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("accuracy")
    except (OSError, ValueError, AttributeError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); evaluate the run again") from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PipelineError(f"{path}: `accuracy` is {value!r}, not a number; evaluate the run "
                            "again")
    return float(value)
