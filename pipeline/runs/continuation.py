"""Continuing an interrupted or failed run: which recorded options must match, and how.

Why its own module: the rule grows as options are added (an older record lacks the newer
fields; it continues as it was trained), and the run folder only asks one question of it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipeline.data.manifest import read_manifest
from pipeline.errors import PipelineError
from pipeline.runs.record import FAILED, INTERRUPTED, RUNNING, RunRecord, utc_now

RESUMABLE = (INTERRUPTED, FAILED)  # statuses a run can be continued from
# Options that may change when an interrupted run is continued (the rest must match).
_RESUME_MAY_CHANGE = {"training.epochs", "training.early_stopping", "recompute", "cache",
                      "training.strategy", "training.jit"}  # same steps on other devices


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# Options added after runs were first recorded, with the value those older runs trained with:
# an older record without the field continues as it was trained.
_CLASS_WEIGHT = "training.class_weight"
_ADDED_LATER: dict[str, Any] = {_CLASS_WEIGHT: "none", "training.label_smoothing": 0.0,
                                "training.mixup": 0.0, "training.cutmix": 0.0,
                                "training.layer_decay": 1.0, "drop_path": 0.0, "start_size": None}


def _even_classes(record: RunRecord) -> bool:
    """Whether the training split of the run's dataset holds as many images of each class
    (False when that cannot be read: then the options are compared as recorded)."""
    try:
        counts = read_manifest(Path(record.data_dir))["counts"]["train"]
        return len({int(counts[name]) for name in record.class_names}) == 1
    except (PipelineError, OSError, KeyError, TypeError, ValueError):
        return False


def continued(old: RunRecord, new: RunRecord) -> RunRecord:
    """``new`` as the continuation of ``old``: same options (but epochs), history kept.

    An interrupted or failed run is continued whichever process stopped it: in a notebook,
    the same kernel gives the same ``run_name`` again after Ctrl-C. A running one only when
    its process is another (that one died); in this process it is an update while training.
    """
    if old.status not in RESUMABLE and (old.status != RUNNING or old.process == new.process):
        return new  # an update while this process trains it, not a fresh start
    before, now = ({**_ADDED_LATER, **_flat(record.config)} for record in (old, new))
    if _even_classes(new):  # balanced weighs every class 1 there: the same training as none
        for flat in (before, now):
            if flat.get(_CLASS_WEIGHT) == "balanced":
                flat[_CLASS_WEIGHT] = "none"
    for key in sorted(set(before) | set(now)):
        if key not in _RESUME_MAY_CHANGE and before.get(key) != now.get(key):
            field_name = key.rpartition(".")[2]
            raise PipelineError(
                f"`run_name` {Path(old.config.get('run_name') or '?').name}: continuing that "
                f"run needs its options; `{field_name}` was {before.get(key)!r}, now "
                f"{now.get(key)!r} (give the same, or choose another `run_name`)"
            )
    note = f"{utc_now()}: from epoch {old.last_epoch or 0} ({old.status})"
    return dataclasses.replace(
        new, created=old.created, resumed=[*old.resumed, note], epochs_run=old.epochs_run,
        best_epoch=old.best_epoch, last_epoch=old.last_epoch,
    )
