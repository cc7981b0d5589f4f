"""The record of a ``run`` parent folder (``run.json``): the plan, why, and each step's state.

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

RUN_RECORD = "run.json"  # the parent folder's record
RECORD_VERSION = 1


@dataclass
class StepRecord:
    """One step's state in the parent folder."""

    status: str = "pending"  # pending | running | completed | interrupted | failed
    digest: str | None = None  # of the inputs the completed run was made from
    seconds: float | None = None  # wall time of the step (training, features included)
    evaluated: str | None = None  # digest of the run that evaluation-test/ belongs to
    evaluation_seconds: float | None = None


@dataclass
class ChapterRecord:
    """The parent folder's record (``run.json``): the plan, why, and each step's state."""

    data_dir: str
    plan: dict[str, Any]
    config: dict[str, Any]
    steps: dict[str, StepRecord] = field(default_factory=dict)
    status: str = "running"  # running | completed | interrupted | failed
    version: int = RECORD_VERSION
    created: str = field(default_factory=lambda: _now())
    updated: str | None = None
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: Any, source: str) -> ChapterRecord:
        if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
            raise PipelineError(f"{source}: not a run record of version {RECORD_VERSION}; "
                                "choose another `run_name`")
        values = dict(document)
        try:
            values["steps"] = {name: StepRecord(**entry)
                               for name, entry in values.get("steps", {}).items()}
            return cls(**values)
        except TypeError as error:
            raise PipelineError(f"{source}: damaged run record ({error})") from None


def read_record(parent: Path) -> ChapterRecord:
    """The record of a ``run`` parent folder."""
    path = Path(parent) / RUN_RECORD
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error})") from None
    return ChapterRecord.from_dict(document, str(path))


def is_chapter(path: Path) -> bool:
    return (Path(path) / RUN_RECORD).is_file()


def save_record(parent: Path, record: ChapterRecord, **changes: Any) -> None:
    """Set ``changes`` on ``record``, stamp it and write it to ``parent`` atomically."""
    for name, value in changes.items():
        setattr(record, name, value)
    record.updated = _now()
    atomic.write_json(parent / RUN_RECORD, record.to_dict())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
