"""What ``run`` keeps when it tried more than one recipe: the step that validates better.

The rule of thumb for a small dataset trains the head on frozen features, then tries the
whole base fine-tuned (``presets.WHOLE_BASE``) within the time budget. Which of the two to
use is decided on the validation split only (the test split is read once, at the end, for
every step alike); a tie keeps extraction, the cheaper model to run and to retrain.
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.workflows.chapter.presets import STEP_EXTRACT, STEP_FINETUNE


def validation_accuracy(folder: Path) -> float | None:
    """The validation accuracy of the completed run in ``folder`` (its best epoch); None
    when it has none."""
    from pipeline.runs.folder import Run

    try:
        value = Run(folder).read_metrics().get("validation", {}).get("accuracy")
    except PipelineError:
        return None
    return None if value is None or math.isnan(value) else float(value)


def keep_better(parent: Path, completed: set[str]) -> tuple[str, str]:
    """The step to keep of extract and finetune under ``parent``, and why, in one line."""
    extract = validation_accuracy(parent / STEP_EXTRACT)
    tuned = validation_accuracy(parent / STEP_FINETUNE) if STEP_FINETUNE in completed else None
    if tuned is None:
        return STEP_EXTRACT, "fine-tuning did not run (the time budget was spent)"
    if extract is not None and tuned <= extract:
        return STEP_EXTRACT, (f"fine-tuning validated no better ({tuned:.1%} against "
                              f"extraction's {extract:.1%})")
    shown = "?" if extract is None else f"{extract:.1%}"
    return STEP_FINETUNE, f"fine-tuning validated better ({tuned:.1%} against extraction's {shown})"
