"""The run directory: one folder per training run holding everything it produced.

Layout of ``models/<run>/``::

    config.json      resolved configuration, kind of run, versions, status
    history.json     per-epoch metrics, rewritten after every epoch
    history.csv      the same as CSV
    best.keras       the checkpoint with the lowest validation loss so far
    final.keras      the model as training left it
    metrics.json     metrics per split (validation, test) of the final model
    curves.png       training vs validation curves

Every file is written atomically, so a run stopped at any moment holds only
complete files. Plots and reports read these files rather than reaching into
training.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import re
from dataclasses import dataclass
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

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Run:
    """A run directory; the path is the only state, everything else is read from disk."""

    path: Path

    # -- creating and opening -------------------------------------------------
    @classmethod
    def create(cls, models_dir: Path, kind: str, name: str | None = None) -> Run:
        """Make a fresh run directory ``models_dir/<name>`` (default ``<kind>-<timestamp>``)."""
        if name is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"{kind}-{stamp}"
            # Two runs started in the same second get distinct names.
            suffix = 1
            while (Path(models_dir) / name).exists():
                suffix += 1
                name = f"{kind}-{stamp}-{suffix}"
        elif not _NAME_OK.match(name):
            raise PipelineError(
                f"--run-name {name!r}: use letters, digits, '.', '_' and '-' only"
            )
        path = Path(models_dir) / name
        if path.exists() and any(path.iterdir()):
            raise PipelineError(f"run folder {path} already exists; choose another --run-name")
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

    # -- configuration ----------------------------------------------------------
    def write_config(self, kind: str, config: dict[str, Any], **extra: Any) -> None:
        """Record what was asked for, with the software versions that ran it."""
        import keras
        import numpy
        import tensorflow

        document = {
            "kind": kind,
            "status": "running",
            "created": _now(),
            "config": config,
            "versions": {
                "python": platform.python_version(),
                "tensorflow": tensorflow.__version__,
                "keras": keras.__version__,
                "numpy": numpy.__version__,
            },
            **extra,
        }
        atomic.write_json(self.file(CONFIG), document)

    def read_config(self) -> dict[str, Any]:
        return _read_json(self.file(CONFIG))

    @property
    def kind(self) -> str:
        return str(self.read_config().get("kind", "unknown"))

    def update_config(self, **fields: Any) -> None:
        """Add or replace top-level fields of config.json (status, weights used, ...)."""
        document = self.read_config()
        document.update(fields)
        atomic.write_json(self.file(CONFIG), document)

    def set_status(self, status: str) -> None:
        self.update_config(status=status, finished=_now())

    # -- history and metrics ----------------------------------------------------
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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); the run may be damaged") from error
