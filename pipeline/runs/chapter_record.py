"""The record of a ``run`` parent folder (``chapter.json``): the plan, why, and each step's state.

One typed dataclass, written atomically after every change of state, so a ``run`` stopped at
any moment can be started again and skip what was done. Written and read only through this
module; ``pipeline.workflows.chapter.workflow`` keeps it up to date and reports read it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.system import atomic
from pipeline.system.typed_json import read_typed

CHAPTER_RECORD = "chapter.json"  # the chapter folder's record
LEGACY_RECORD = "run.json"  # its name before version 0.2: still read, rewritten as chapter.json
RECORD_VERSION = 1


@dataclass
class StepRecord:
    """One step's state in the parent folder."""

    status: str = "pending"  # pending | running | completed | skipped | interrupted | failed
    reason: str | None = None  # why it was skipped (the evaluate step without a test split)
    digest: str | None = None  # of the inputs the completed run was made from
    seconds: float | None = None  # wall time of the step (training, features included)
    evaluated: str | None = None  # digest of the run that evaluation-test/ belongs to
    evaluation_seconds: float | None = None


@dataclass
class ChapterRecord:
    """The parent folder's record (``chapter.json``): the plan, why, and each step's state."""

    data_dir: str
    plan: dict[str, Any]
    config: dict[str, Any]
    steps: dict[str, StepRecord] = field(default_factory=dict)
    status: str = "running"  # running | completed | interrupted | failed
    version: int = RECORD_VERSION
    created: str = field(default_factory=lambda: _now())
    updated: str | None = None
    report: str | None = None
    process: str | None = None  # the process running it (``processes.describe``)
    kept: str | None = None  # the step kept, when ``run`` tried several (by validation)
    kept_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: Any, source: str) -> ChapterRecord:
        if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
            raise PipelineError(f"{source}: not a chapter record of version {RECORD_VERSION}; "
                                "choose another `run_name`")
        return read_typed(cls, document, source, "chapter record")


def read_record(parent: Path) -> ChapterRecord:
    """The record of a ``run`` parent folder."""
    path = record_path(parent)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error})") from None
    return ChapterRecord.from_dict(document, str(path))


def record_path(parent: Path) -> Path:
    """Where the chapter folder's record is: ``chapter.json``, or ``run.json`` in a folder
    written before the record was renamed."""
    current = Path(parent) / CHAPTER_RECORD
    legacy = Path(parent) / LEGACY_RECORD
    return legacy if legacy.is_file() and not current.is_file() else current


def is_chapter(path: Path) -> bool:
    return record_path(path).is_file()


def save_record(parent: Path, record: ChapterRecord, **changes: Any) -> None:
    """Set ``changes`` on ``record``, stamp it and write it to ``parent`` atomically."""
    for name, value in changes.items():
        setattr(record, name, value)
    record.updated = _now()
    atomic.write_json(parent / CHAPTER_RECORD, record.to_dict())
    legacy = Path(parent) / LEGACY_RECORD
    if legacy.is_file():
        legacy.unlink()  # ours: the same record under its old name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
