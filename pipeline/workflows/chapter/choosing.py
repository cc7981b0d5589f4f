"""What ``run`` keeps when it tried more than one recipe: the step that validates best.

The rule of thumb for a small dataset trains the head on frozen features, then tries the
whole base fine-tuned (``presets.WHOLE_BASE``), then, while the time budget lasts, a second
base the same way and the mean of the two fine-tuned models. Which one to use is decided on
the validation split only (the test split is read once, at the end, for every step alike);
a tie keeps the earlier step: extraction, then the single model, the cheaper to run and to
retrain.
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.workflows.chapter.presets import (
    STEP_ENSEMBLE,
    STEP_EXTRACT,
    STEP_FINETUNE,
    STEP_FINETUNE_SECOND,
)

# The steps whose models may be kept, cheapest first: ties go to the earlier.
CANDIDATES = (STEP_EXTRACT, STEP_FINETUNE, STEP_FINETUNE_SECOND, STEP_ENSEMBLE)


def validation_accuracy(folder: Path) -> float | None:
    """The validation accuracy of the completed run in ``folder`` (its best epoch); None
    when it has none."""
    from pipeline.runs.folder import Run

    try:
        value = Run(folder).read_metrics().get("validation", {}).get("accuracy")
    except PipelineError:
        return None
    return None if value is None or math.isnan(value) else float(value)


def keep_best(parent: Path, completed: set[str]) -> tuple[str, str]:
    """The step to keep among the ``completed`` candidates under ``parent``, and why, in one
    line naming every candidate's validation accuracy."""
    scores = {step: validation_accuracy(parent / step)
              for step in CANDIDATES if step in completed}
    measured = {step: score for step, score in scores.items() if score is not None}
    if not measured:
        return STEP_EXTRACT, "no step has a validation accuracy to compare"
    best = max(measured, key=lambda step: (measured[step], -CANDIDATES.index(step)))
    others = ", ".join(f"{step} {score:.1%}" for step, score in measured.items() if step != best)
    if not others:
        return best, f"the only step that trained (validation {measured[best]:.1%}; the time " \
                     "budget was spent before the others)"
    return best, f"it validated best: {measured[best]:.1%}, against {others}"
