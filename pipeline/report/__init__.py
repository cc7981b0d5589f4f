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
    DatasetSummary,
    Report,
    RunSummary,
    WrongPhoto,
)
from pipeline.system.paths import output_folder, refuse_to_replace

__all__ = [
    "BOOK_REFERENCES",
    "BookReference",
    "ConfusionMatrix",
    "DatasetSummary",
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


def write_report(report: Report, place: Path, name: str = "report", *,
                 force: bool = True) -> ReportFiles:
    """Write ``<place>/<name>.html`` and ``<place>/<name>.md`` (pictures in ``<name>_files/``).

    ``place`` ending in ``.html`` is the HTML file itself (its Markdown twin beside it), never
    a folder of that name. Without ``force``, report files already there are refused before
    anything is written.
    """
    place = Path(place)
    if place.suffix.lower() == ".html":
        place, name = place.parent, place.stem
    folder = output_folder(place, "out")
    html, markdown = folder / f"{name}.html", folder / f"{name}.md"
    refuse_to_replace((html, markdown), force)
    return ReportFiles(html=write_html(report, html), markdown=write_markdown(report, markdown))
