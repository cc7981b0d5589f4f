"""The run directory: one folder per training run holding everything it produced.

Layout of ``models/<run>/``::

    config.json      the run record (``RunRecord``): what ran, on what, how it ended
    history.json     per-epoch metrics, rewritten after every epoch
    history.csv      the same as CSV
    best.keras       the checkpoint with the best monitored value so far
    last.keras       the model and optimizer state after the last finished epoch, to resume an
                     interrupted run (removed once the run completes)
    final.keras      the model as training left it (not written when training failed)
    metrics.json     metrics per split (validation, test) of the evaluated model
    curves.png       training vs validation curves
    logs/            TensorBoard event files (``tensorboard --logdir models/<run>/logs``)

Every file is written atomically, so a run stopped at any moment holds only complete
files (a crash can leave a temporary ``.<name>-<random>`` file beside them: resuming the run
removes it). Values that are not finite (a diverged loss) are written as JSON ``null`` and
read back as NaN. ``config.json`` is one versioned dataclass (``run_record.py``), written with
``to_dict`` and read back into the same typed object (as timm's ``PretrainedCfg``): readers get
fields, never a dict to dig in. Plots and reports read these files rather than reaching into
training.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import platform
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.devices import strategies
from pipeline.errors import PipelineError

# The record (``config.json``) lives in its own module; its names are re-exported from here.
from pipeline.runs.continuation import RESUMABLE, continued
from pipeline.runs.maker import CREATOR, claim_new, creator
from pipeline.runs.record import (
    COMPLETED,
    CONFIG,
    EXTRACT,
    FAILED,
    FINETUNE,
    INTERRUPTED,
    RECORD_VERSION,
    RUNNING,
    SCRATCH,
    CachedTopRecord,
    FeatureRecord,
    RunRecord,
    ViewsRecord,
    WeightsRecord,
    utc_now,
)
from pipeline.system import atomic, processes
from pipeline.system.paths import check_name, check_writable_folder, child_path
from pipeline.system.typed_json import read_typed

__all__ = [
    "BEST_MODEL", "COMPLETED", "CONFIG", "CURVES", "EXTRACT", "FAILED", "FINAL_MODEL", "FINETUNE",
    "HISTORY_CSV", "HISTORY_JSON", "INTERRUPTED", "LAST_MODEL", "LOGS", "METRICS",
    "RECORD_VERSION", "RESERVED_NAMES", "RESUMABLE", "RUNNING", "SCRATCH", "CachedTopRecord",
    "FeatureRecord", "IncompleteRunWarning", "Run", "RunRecord", "ViewsRecord", "WeightsRecord",
    "software_versions",
]

HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"
LAST_MODEL = "last.keras"
LOGS = "logs"
METRICS = "metrics.json"
CURVES = "curves.png"

# Folders the pipeline itself keeps beside the runs in ``models_dir``: never a run's name.
RESERVED_NAMES = {"features": "the feature cache"}
# What ``pipeline.system.atomic`` leaves behind when killed mid-write: ``.<stem>-<8 hex><suffix>``.
_TEMPORARY = re.compile(r"^\..+-[0-9a-f]{8}(\.[A-Za-z0-9]+)*$|\.tmp$")


class IncompleteRunWarning(UserWarning):
    """A run that did not complete (interrupted, failed, or killed) is being read."""


def software_versions() -> dict[str, str]:
    """The versions that ran a run (imported here, not at module load: TensorFlow is slow)."""
    import keras
    import numpy
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__}


# -- the folder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run directory; the path is the only state, everything else is read from disk.

    ``resuming``: this process continues the interrupted run in ``path`` (see ``create``).
    """

    path: Path
    resuming: bool = field(default=False, compare=False)

    @staticmethod
    def check_name_free(models_dir: Path, name: str | None) -> bool:
        """Fail now, not after minutes of work, if ``run_name`` is unusable or taken.

        Returns True when ``name`` is an interrupted (or failed) run that the same command
        continues: the one way to resume a run is to give its name again. A ``models_dir``
        that is a file or read-only is refused here too.
        """
        check_writable_folder(models_dir, "models_dir")
        if name is None:
            return False
        folder = child_path(models_dir, check_name(name, "run_name"), "run_name")
        if name in RESERVED_NAMES:
            raise PipelineError(f"`run_name` {name!r}: {folder} is {RESERVED_NAMES[name]}; "
                                "choose another `run_name`")
        if not folder.is_dir() or not any(folder.iterdir()):
            return False
        if not (folder / CONFIG).is_file():
            making = creator(folder)
            if making is not None and not processes.may_take_over(making):
                raise PipelineError(f"`run_name` {name!r}: {folder} already exists, being made by "
                                    f"process {making} right now; choose another `run_name`; "
                                    + processes.take_over_hint(f"process {making}"))
            if making is None:
                raise PipelineError(f"`run_name` {name!r}: {folder} already exists and is not a "
                                    "run folder; choose another `run_name`")
            return False  # its maker died before writing a record: nothing there to continue
        record = Run(folder).record()
        if record.status in RESUMABLE:
            return True
        if record.status == RUNNING and not processes.may_take_over(record.process):
            raise PipelineError(f"`run_name` {name!r}: {folder} is being trained right now "
                                f"(process {record.process}); choose another `run_name`; "
                                + processes.take_over_hint(f"process {record.process}"))
        if record.status == RUNNING:
            return True  # its process was killed before it could mark the run: continue it
        raise PipelineError(f"run folder {folder} already exists ({record.status}); choose "
                            "another `run_name`")

    @classmethod
    def create(cls, models_dir: Path, kind: str, name: str | None = None) -> Run:
        """Make a fresh run directory ``models_dir/<name>`` (default ``<kind>-<timestamp>``).

        When ``name`` is a run that was interrupted (or failed, or whose process died), that
        run is continued instead: its stale temporary files are removed, and training picks
        up from its ``last.keras`` (see ``pipeline.training.loop``). A cluster's
        non-chief worker makes it in a throw-away directory: only the chief writes runs.
        """
        models_dir = strategies.output_dir(models_dir)
        if name is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"{kind}-{stamp}"
            suffix = 1  # two runs started in the same second get distinct names
            while (Path(models_dir) / name).exists():
                suffix += 1
                name = f"{kind}-{stamp}-{suffix}"
        resuming = cls.check_name_free(models_dir, name)
        path = Path(models_dir) / name
        path.mkdir(parents=True, exist_ok=True)
        if not resuming:
            claim_new(path, name)
        run = cls(path, resuming=resuming)
        if resuming:
            if run.record().kind != kind:
                raise PipelineError(f"`run_name` {name!r}: {path} is a {run.record().kind} run, "
                                    f"not {kind}; choose another `run_name`")
            run.remove_temporaries()
        return run

    @classmethod
    def open(cls, path: str | Path, *, warn: bool = True) -> Run:
        """Open an existing run, with a clear error when ``path`` is not one.

        A run that did not complete is opened with an ``IncompleteRunWarning`` saying what
        happened and which epoch its best model is from (``warn=False``: not).
        """
        path = Path(path)
        if not path.is_dir():
            raise PipelineError(f"{path}: no such run folder (runs are under models/)")
        if not (path / CONFIG).is_file():
            raise PipelineError(f"{path}: not a run folder (it has no {CONFIG})")
        run = cls(path)
        note = run.completion_note() if warn else None
        if note:
            warnings.warn(note, IncompleteRunWarning, stacklevel=2)
        return run

    def completion_note(self) -> str | None:
        """None for a completed run; else what happened to it and what its best model is."""
        record = self.record()
        if record.status == COMPLETED:
            return None
        epochs = f"after {record.epochs_run} epoch{'s' if record.epochs_run != 1 else ''}"
        if record.status == RUNNING and not processes.described_has_ended(record.process):
            what = f"is still training (process {record.process})"
        elif record.status == RUNNING:
            what = "did not finish: its process ended without marking it (killed?)"
        else:
            what = f"{record.status} {epochs} ({record.stop_reason or 'no reason recorded'})"
        if self.file(BEST_MODEL).is_file():
            model = (f"its {BEST_MODEL} is from epoch {record.best_epoch}" if record.best_epoch
                     else f"it has a {BEST_MODEL}")
        else:
            model = f"it has no {BEST_MODEL}"
        return f"run {self.path} did not complete: {what}; {model}"

    def remove_temporaries(self) -> list[Path]:
        """Delete what an atomic write killed mid-way left behind (``.<name>-<hex>`` files)."""
        removed = []
        for path in self.path.rglob("*"):
            if path.is_file() and _TEMPORARY.search(path.name):
                path.unlink()
                removed.append(path)
        return removed

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # -- the record -------------------------------------------------------------------------
    def write_record(self, record: RunRecord) -> RunRecord:
        """Write ``record`` (with the software versions that ran it, if it has none).

        A run being continued keeps what its first part recorded (creation time, epochs,
        history so far), notes the resume, and refuses options that changed meanwhile.
        """
        if not record.versions:
            record = dataclasses.replace(record, versions=software_versions())
        if record.status == RUNNING:
            if record.process is None:
                record = dataclasses.replace(record, process=processes.describe())
            if self.resuming and self.file(CONFIG).is_file():
                record = continued(self.record(), record)
        atomic.write_json(self.file(CONFIG), record.to_dict())
        self.file(CREATOR).unlink(missing_ok=True)  # the record names the process from now on
        return record

    def record(self) -> RunRecord:
        return RunRecord.from_dict(_read_json(self.file(CONFIG)), str(self.file(CONFIG)))

    def update_record(self, **changes: Any) -> RunRecord:
        """Replace fields of the record (status, epochs run ...); unknown names are a bug."""
        return self.write_record(dataclasses.replace(self.record(), **changes))

    def finish(self, status: str, **changes: Any) -> RunRecord:
        return self.update_record(status=status, finished=utc_now(), **changes)

    # -- history and metrics ------------------------------------------------------------------
    def write_history(self, history: dict[str, list[float]]) -> None:
        """Write the per-epoch history as JSON and CSV (one row per epoch); NaN as null."""
        history = {key: [_finite_or_none(v) for v in values] for key, values in history.items()}
        atomic.write_json(self.file(HISTORY_JSON), history)
        keys = list(history)
        epochs = max((len(v) for v in history.values()), default=0)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["epoch", *keys])
        for epoch in range(epochs):
            row = [history[k][epoch] if epoch < len(history[k]) else "" for k in keys]
            writer.writerow([epoch + 1, *row])
        atomic.write_text(self.file(HISTORY_CSV), buffer.getvalue())

    def read_history(self) -> dict[str, list[float]]:
        path = self.file(HISTORY_JSON)
        if not path.is_file():
            raise PipelineError(f"{self.path}: no {HISTORY_JSON} yet (did training run an epoch?)")
        history = read_typed(dict[str, list[float | None]], _read_json(path), str(path),
                             "history")
        return {key: [_none_to_nan(v) for v in values] for key, values in history.items()}

    def write_metrics(self, split: str, metrics: dict[str, float]) -> None:
        """Store the metrics of one split, keeping those of the others."""
        path = self.file(METRICS)
        document = _read_json(path) if path.is_file() else {}
        document[split] = {k: _finite_or_none(float(v)) for k, v in metrics.items()}
        atomic.write_json(path, document)

    def read_metrics(self) -> dict[str, dict[str, float]]:
        path = self.file(METRICS)
        document = _read_json(path) if path.is_file() else {}
        document = read_typed(dict[str, dict[str, float | None]], document, str(path), "metrics")
        return {split: {k: _none_to_nan(v) for k, v in metrics.items()}
                for split, metrics in document.items()}

    def model_path(self, which: str = "best") -> Path:
        """Path of the ``best`` or ``final`` model, falling back to the other if one is missing.

        A run that did not complete never falls back from ``best`` to ``final``: its final
        model is the state training was stopped in (mid-epoch), not a checkpoint.
        """
        completed = self.record().status == COMPLETED
        order = [BEST_MODEL, FINAL_MODEL] if which == "best" else [FINAL_MODEL, BEST_MODEL]
        if not completed and which == "best":
            order = [BEST_MODEL]
        for name in order:
            if self.file(name).is_file():
                return self.file(name)
        if not completed:
            record = self.record()
            how = (f"{record.status} before saving one ({record.stop_reason})"
                   if record.stop_reason else "did not complete (still running, or killed)")
            raise PipelineError(f"{self.path}: no saved model to use, the run {how}; train it "
                                "again")
        raise PipelineError(f"{self.path}: no saved model ({BEST_MODEL} or {FINAL_MODEL})")

    def summary(self) -> str:
        """Where the run's results went and its headline numbers, for people."""
        record = self.record()
        lines = [f"run: {self.path}  ({record.status}, {record.epochs_run} epochs, "
                 f"{record.precision})", f"  dataset: {record.data_dir}"]
        if record.stop_reason:
            lines.append(f"  {record.status}: {record.stop_reason}")
        if record.resumed:
            lines.append(f"  resumed: {'; '.join(record.resumed)}")
        for split, metrics in self.read_metrics().items():
            lines.append(f"  {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        for name in (BEST_MODEL, LAST_MODEL, FINAL_MODEL, HISTORY_CSV, CURVES, METRICS, LOGS):
            if self.file(name).exists():
                lines.append(f"  {self.file(name)}")
        return "\n".join(lines)


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: a value that is not finite is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _none_to_nan(value: Any) -> Any:
    return math.nan if value is None else value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); the run may be damaged") from error
