"""The report as Markdown, with its pictures as PNG files in a folder beside it.

``report.md`` links ``report_files/curves.png`` and so on by relative paths, so the pair
can be committed to a repository or opened in any Markdown viewer. File names are made
from positions, never from run names, so a user's string never becomes a path.
"""

from __future__ import annotations

import io
import re
from html import escape
from pathlib import Path

from PIL import Image

from pipeline.report import figures, table
from pipeline.report.model import BOOK_REFERENCES, Report, RunSummary
from pipeline.system import atomic

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#!{}])")


def write_markdown(report: Report, out: Path) -> Path:
    """Write ``out`` (``report.md``) and its pictures in ``<stem>_files/`` beside it.

    The pictures are written first, each atomically, then the Markdown file, so a reader
    never finds the text pointing at pictures that are not there yet. Returns ``out``.
    """
    out = Path(out)
    folder = out.parent / f"{out.stem}_files"
    pictures: dict[str, bytes] = {}

    def picture(name: str, data: bytes, alt: str) -> str:
        pictures[name] = data
        return f"![{cell(alt)}]({folder.name}/{name})"

    lines = [f"# {cell(report.title)}", ""]
    if report.dataset:
        lines += [cell(report.dataset), ""]
    lines += _datasets(report)
    lines += _strategies(report)
    if report.shows_book:
        lines += _book_table()
    lines += [
        "## Learning curves",
        "",
        "Training dashed, validation solid. A fine-tuning run continues its extraction run's "
        "epochs (dotted line where it starts).",
        "",
        picture("curves.png", figures.curves_png(report), "learning curves of every run"),
        "",
    ]
    lines += _recall(report)
    for run in report.runs:
        lines += _confusion(run)
    for number, run in enumerate(report.runs, start=1):
        lines += _wrong_photos(run, number, picture)
    for name, data in pictures.items():
        atomic.write_bytes(folder / name, data)
    atomic.write_text(out, "\n".join(lines) + "\n")
    return out


def cell(text: str) -> str:
    """``text`` safe inside Markdown (and a table cell): no HTML, no markup, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape(" ".join(str(text).split()), quote=False))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(cell(column) for column in header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def _strategies(report: Report) -> list[str]:
    return [
        "## Strategies", "",
        *_table(table.strategy_columns(report), table.strategy_rows(report)),
        f"*{cell(table.strategies_note(report))}*", "",
    ]


def _datasets(report: Report) -> list[str]:
    lines = []
    for dataset in report.datasets:
        lines += [f"## Data: {cell(dataset.name)}", "", cell(table.dataset_line(dataset)), ""]
        rows = table.dataset_rows(dataset)
        if rows:
            lines += _table(rows[0], rows[1:])
    return lines


def _recall(report: Report) -> list[str]:
    rows = table.recall_rows(report)
    if not rows:
        return []
    return ["## Recall per class (test)", "",
            "The share of each class's test photos the run classified correctly; their mean "
            "is the balanced accuracy.", "", *_table(rows[0], rows[1:])]


def _book_table() -> list[str]:
    rows = [(ref.what, ref.kind, f"{100 * ref.accuracy:g}%", ref.split) for ref in BOOK_REFERENCES]
    return [
        "## The book's reference numbers", "",
        f"*{cell(table.book_caption())}*", "",
        *_table(("Book's strategy", "Kind", "Book's accuracy", "Split"), rows),
    ]


def _confusion(run: RunSummary) -> list[str]:
    if run.confusion is None:
        return []
    header, *body = table.confusion_rows(run.confusion)
    return [f"## Confusion matrix: {cell(run.name)}", "", *_table(header, body)]


def _wrong_photos(run: RunSummary, number: int, picture) -> list[str]:
    if not run.wrong_photos:
        return []
    lines = [f"## Most confidently wrong: {cell(run.name)}", "",
             table.wrong_photos_caption(run), ""]
    for index, photo in enumerate(run.wrong_photos, start=1):
        caption = table.wrong_caption(photo.true_class, photo.predicted_class, photo.probability)
        thumbnail = figures.photo_thumbnail(photo.path)
        shown = (
            picture(f"run{number}-wrong{index}.png", _as_png(thumbnail), photo.path.name)
            if thumbnail is not None else "(photo could not be read)"
        )
        overlay = figures.overlay_thumbnail(photo.gradcam) if photo.gradcam is not None else None
        if overlay is not None:
            name = f"run{number}-gradcam{index}.png"
            shown += " " + picture(name, _as_png(overlay), f"Grad-CAM of {photo.path.name}")
        lines += [f"{shown}  ", f"{cell(photo.path.name)}: {cell(caption)}", ""]
    return lines


def _as_png(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
