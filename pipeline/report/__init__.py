"""A report comparing training strategies: one self-contained HTML file and a Markdown twin.

The caller fills the typed values of ``pipeline.report.model`` (runs, confusion matrices,
wrongly classified photos); ``write_report`` renders both versions into a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.report.html import write_html
from pipeline.report.markdown import write_markdown
from pipeline.report.model import (
    BOOK_REFERENCES,
    BookReference,
    ConfusionMatrix,
    Report,
    RunSummary,
    WrongPhoto,
)

__all__ = [
    "BOOK_REFERENCES",
    "BookReference",
    "ConfusionMatrix",
    "Report",
    "ReportFiles",
    "RunSummary",
    "WrongPhoto",
    "write_report",
]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path


def write_report(report: Report, folder: Path, name: str = "report") -> ReportFiles:
    """Write ``<folder>/<name>.html`` and ``<folder>/<name>.md`` (pictures in ``<name>_files/``)."""
    folder = Path(folder)
    return ReportFiles(
        html=write_html(report, folder / f"{name}.html"),
        markdown=write_markdown(report, folder / f"{name}.md"),
    )
