"""The run directory: one folder per training run holding everything it produced.

Layout of ``models/<run>/``::

    config.json      the run record (``RunRecord``): what ran, on what, how it ended
    history.json     per-epoch metrics, rewritten after every epoch
    history.csv      the same as CSV
    best.keras       the checkpoint with the best monitored value so far
    final.keras      the model as training left it
    metrics.json     metrics per split (validation, test) of the evaluated model
    curves.png       training vs validation curves

Every file is written atomically, so a run stopped at any moment holds only complete
files. ``config.json`` is one versioned dataclass, written with ``to_dict`` and read back
into the same typed object (as timm's ``PretrainedCfg``): readers get fields, never a dict
to dig in. Plots and reports read these files rather than reaching into training.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import platform
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline import atomic
from pipeline.errors import PipelineError

CONFIG = "config.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"
METRICS = "metrics.json"
CURVES = "curves.png"

SCRATCH, EXTRACT, FINETUNE = "scratch", "extract", "finetune"  # kinds of run
RECORD_VERSION = 2  # bump when a field changes meaning or disappears

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def software_versions() -> dict[str, str]:
    """The versions that ran a run (imported here, not at module load: TensorFlow is slow)."""
    import keras
    import numpy
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__}


# -- the record ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsRecord:
    """Where the conv base's weights came from (``source``) and a line saying which."""

    source: str  # imagenet | lpips | file | none
    detail: str


@dataclass(frozen=True)
class FeatureRecord:
    """One split's cached features as a run used them."""

    path: str
    key: str  # sha256 of the feature key
    layer: str
    shape: list[int]
    reused: bool
    compute_seconds: float  # time spent computing them in this run (0 when reused)


@dataclass(frozen=True)
class CachedTopRecord:
    """Fine-tuning on cached tensors: where the model was split and the tensors used."""

    split_layer: str
    features: dict[str, FeatureRecord]


@dataclass(frozen=True)
class RunRecord:
    """Everything a run's readers need, typed; ``config`` keeps the full workflow config.

    ``config`` is the workflow's configuration dataclass as a dict, for the record only:
    what a reader needs is a field here.
    """

    kind: str  # scratch | extract | finetune
    data_dir: str  # the dataset trained on
    class_names: list[str]
    image_size: int  # the size images are fed at (multi-size runs: the evaluation size)
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "running"  # running | completed | interrupted
    version: int = RECORD_VERSION
    created: str = field(default_factory=_now)
    finished: str | None = None
    precision: str = "float32"  # the Keras dtype policy training ran under
    base: str | None = None  # conv base (transfer runs)
    weights: WeightsRecord | None = None
    preprocessing: str | None = None
    parent_run: str | None = None  # finetune: the extract run it started from
    epochs_run: int = 0
    best_epoch: int | None = None
    evaluated_model: str | None = None  # the model metrics.json was measured on
    counts: dict[str, int] = field(default_factory=dict)  # images per split
    base_output: str | None = None  # transfer runs: the base's last layer (the head's input)
    features: dict[str, FeatureRecord] | None = None  # extract: the base's output per split
    split_features: dict[str, FeatureRecord] | None = None  # extract: at the split point
    trainable_layers: list[str] | None = None  # finetune
    trainable_parameters: int | None = None  # finetune
    cached_top: CachedTopRecord | None = None  # finetune on cached tensors
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: Any, source: str = CONFIG) -> RunRecord:
        """The record in ``document``; a clear error for another version or a damaged one."""
        if not isinstance(document, dict):
            raise PipelineError(f"{source}: not a run record; the run may be damaged")
        version = document.get("version")
        if version != RECORD_VERSION:
            raise PipelineError(
                f"{source}: a run record of version {version or 1}, this pipeline reads version "
                f"{RECORD_VERSION}; train the run again with this version"
            )
        values = dict(document)
        try:
            if values.get("weights") is not None:
                values["weights"] = WeightsRecord(**values["weights"])
            for name in ("features", "split_features"):
                if values.get(name) is not None:
                    values[name] = _feature_records(values[name])
            if values.get("cached_top") is not None:
                top = values["cached_top"]
                values["cached_top"] = CachedTopRecord(top["split_layer"],
                                                       _feature_records(top["features"]))
            return cls(**values)
        except (TypeError, KeyError) as error:
            raise PipelineError(f"{source}: damaged run record ({error})") from None


def _feature_records(entries: dict[str, Any]) -> dict[str, FeatureRecord]:
    return {split: FeatureRecord(**entry) for split, entry in entries.items()}


# -- the folder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run directory; the path is the only state, everything else is read from disk."""

    path: Path

    @staticmethod
    def check_name_free(models_dir: Path, name: str | None) -> None:
        """Fail now, not after minutes of work, if ``run_name`` is unusable or taken."""
        if name is None:
            return
        if not _NAME_OK.match(name):
            raise PipelineError(f"`run_name` {name!r}: use letters, digits, '.', '_' and '-' only")
        folder = Path(models_dir) / name
        if folder.is_dir() and any(folder.iterdir()):
            raise PipelineError(f"run folder {folder} already exists; choose another `run_name`")

    @classmethod
    def create(cls, models_dir: Path, kind: str, name: str | None = None) -> Run:
        """Make a fresh run directory ``models_dir/<name>`` (default ``<kind>-<timestamp>``)."""
        if name is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"{kind}-{stamp}"
            suffix = 1  # two runs started in the same second get distinct names
            while (Path(models_dir) / name).exists():
                suffix += 1
                name = f"{kind}-{stamp}-{suffix}"
        cls.check_name_free(models_dir, name)
        path = Path(models_dir) / name
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Open an existing run, with a clear error when ``path`` is not one."""
        path = Path(path)
        if not path.is_dir():
            raise PipelineError(f"{path}: no such run folder (runs are under models/)")
        if not (path / CONFIG).is_file():
            raise PipelineError(f"{path}: not a run folder (it has no {CONFIG})")
        return cls(path)

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # -- the record -------------------------------------------------------------------------
    def write_record(self, record: RunRecord) -> RunRecord:
        """Write ``record`` (with the software versions that ran it, if it has none)."""
        if not record.versions:
            record = dataclasses.replace(record, versions=software_versions())
        atomic.write_json(self.file(CONFIG), record.to_dict())
        return record

    def record(self) -> RunRecord:
        return RunRecord.from_dict(_read_json(self.file(CONFIG)), str(self.file(CONFIG)))

    def update_record(self, **changes: Any) -> RunRecord:
        """Replace fields of the record (status, epochs run ...); unknown names are a bug."""
        return self.write_record(dataclasses.replace(self.record(), **changes))

    def finish(self, status: str, **changes: Any) -> RunRecord:
        return self.update_record(status=status, finished=_now(), **changes)

    # -- history and metrics ------------------------------------------------------------------
    def write_history(self, history: dict[str, list[float]]) -> None:
        """Write the per-epoch history as JSON and CSV (one row per epoch)."""
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
        return _read_json(path)

    def write_metrics(self, split: str, metrics: dict[str, float]) -> None:
        """Store the metrics of one split, keeping those of the others."""
        path = self.file(METRICS)
        document = _read_json(path) if path.is_file() else {}
        document[split] = {k: float(v) for k, v in metrics.items()}
        atomic.write_json(path, document)

    def read_metrics(self) -> dict[str, dict[str, float]]:
        path = self.file(METRICS)
        return _read_json(path) if path.is_file() else {}

    def model_path(self, which: str = "best") -> Path:
        """Path of the ``best`` or ``final`` model, falling back to the other if one is missing."""
        order = [BEST_MODEL, FINAL_MODEL] if which == "best" else [FINAL_MODEL, BEST_MODEL]
        for name in order:
            if self.file(name).is_file():
                return self.file(name)
        raise PipelineError(f"{self.path}: no saved model ({BEST_MODEL} or {FINAL_MODEL})")

    def summary(self) -> str:
        """Where the run's results went and its headline numbers, for people."""
        record = self.record()
        lines = [f"run: {self.path}  ({record.status}, {record.epochs_run} epochs, "
                 f"{record.precision})"]
        for split, metrics in self.read_metrics().items():
            lines.append(f"  {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        for name in (BEST_MODEL, FINAL_MODEL, HISTORY_CSV, CURVES, METRICS):
            if self.file(name).exists():
                lines.append(f"  {self.file(name)}")
        return "\n".join(lines)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); the run may be damaged") from error
