"""The report as one self-contained HTML file: every picture embedded, no script, no network.

A reader can mail the file or open it offline: images are ``data:`` URIs (curves as PNG,
photos as small JPEGs), the style sheet is inline, and nothing names another file or
host. Every string that came from the user (run names, class names, paths) is escaped.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from pipeline.report import figures, table
from pipeline.report.model import BOOK_REFERENCES, Report, RunSummary
from pipeline.system import atomic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
td { white-space: nowrap; }
#strategies td { white-space: normal; }  /* ten columns: a long model name may wrap */
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; }
.book { color: #7a4b00; background: #fff6e0; }
.caption { font-size: 0.9em; color: #555; max-width: 60em; }
figure { display: inline-block; margin: 0.4em; vertical-align: top; }
figure img { margin-right: 4px; vertical-align: top; }
figcaption { font-size: 0.8em; overflow-wrap: anywhere; max-width: 390px; }
img.curves { max-width: 100%; }
.wide { overflow-x: auto; }
table.compact { font-size: 0.8em; }
table.compact td { padding: 0.15em 0.35em; text-align: center; min-width: 1.8em; }
table.compact thead th + th { writing-mode: vertical-rl; transform: rotate(180deg);
  text-align: left; padding: 0.4em 0.15em; }
"""


def render_html(report: Report) -> str:
    """The whole report as an HTML document (a string)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
    ]
    if report.dataset:
        parts.append(f"<p>{escape(report.dataset)}</p>")
    parts += _datasets(report)
    parts += _strategies(report)
    if report.shows_book:
        parts += _book_table()
    parts += [
        "<h2>Learning curves</h2>",
        '<p class="caption">Training dashed, validation solid. A fine-tuning run continues '
        "its extraction run's epochs (dotted line where it starts).</p>",
        _img(figures.curves_png(report), "image/png", "learning curves of every run", "curves"),
    ]
    parts += _recall(report)
    for run in report.runs:
        parts += _confusion(run)
    for run in report.runs:
        parts += _wrong_photos(run)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(report: Report, out: Path) -> Path:
    """Write ``render_html(report)`` to ``out`` atomically; returns ``out``."""
    atomic.write_text(out, render_html(report))
    return Path(out)


def _strategies(report: Report) -> list[str]:
    columns = table.strategy_columns(report)
    rows = [
        f"<tr>{_cells(row, 'td', columns)}</tr>" for row in table.strategy_rows(report)
    ]
    return [
        "<h2>Strategies</h2>",
        f'<table id="strategies"><thead><tr>{_cells(columns, "th", columns)}</tr></thead><tbody>',
        *rows,
        "</tbody></table>",
        f'<p class="caption">{escape(table.strategies_note(report))}</p>',
    ]


def _cells(values, tag: str, columns=None) -> str:
    """``<td>`` (or ``<th>``) cells of ``values``, the book's column marked as the book's."""
    columns = columns or [""] * len(values)
    return "".join(f"<{tag}{_book_class(column)}>{escape(value)}</{tag}>"
                   for column, value in zip(columns, values, strict=True))


def _plain_table(rows: list[tuple[str, ...]], attributes: str = "") -> list[str]:
    """A table whose first row is its header and first column names its rows."""
    header, *body = rows
    return [
        f'<div class="wide"><table{attributes}><thead><tr>{_cells(header, "th")}</tr></thead>'
        "<tbody>",
        *(f"<tr><th>{escape(row[0])}</th>{_cells(row[1:], 'td')}</tr>" for row in body),
        "</tbody></table></div>",
    ]


def _datasets(report: Report) -> list[str]:
    parts = []
    for dataset in report.datasets:
        parts += [f"<h2>Data: {escape(dataset.name)}</h2>",
                  f"<p>{escape(table.dataset_line(dataset))}</p>"]
        rows = table.dataset_rows(dataset)
        if rows:
            parts += _plain_table(rows, ' class="dataset"')
    return parts


def _recall(report: Report) -> list[str]:
    rows = table.recall_rows(report)
    if not rows:
        return []
    return ["<h2>Recall per class (test)</h2>",
            '<p class="caption">The share of each class\'s test photos the run classified '
            "correctly; their mean is the balanced accuracy.</p>",
            *_plain_table(rows, ' id="recall"')]


def _book_class(column: str) -> str:
    return ' class="book"' if column == table.BOOK_COLUMN else ""


def _book_table() -> list[str]:
    rows = [
        f'<tr><td>{escape(ref.what)}</td><td>{escape(ref.kind)}</td>'
        f'<td class="book">{100 * ref.accuracy:g}%</td><td>{escape(ref.split)}</td></tr>'
        for ref in BOOK_REFERENCES
    ]
    return [
        "<h2>The book's reference numbers</h2>",
        f'<p class="caption">{escape(table.book_caption())}</p>',
        '<table id="book"><thead><tr><th>Book\'s strategy</th><th>Kind</th>'
        "<th>Book's accuracy</th><th>Split</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
    ]


def _confusion(run: RunSummary) -> list[str]:
    if run.confusion is None:
        return []
    compact = len(run.confusion.class_names) >= table.COMPACT_CLASSES
    header, *body = table.confusion_rows(run.confusion, compact)
    shares = table.row_shares(run.confusion)
    rows = [
        "<tr><th>" + escape(row[0]) + "</th>"
        + "".join(
            f'<td style="background: rgba(31, 119, 180, {0.6 * share:.2f})" '
            f'title="{escape(row[0])} as {escape(name)}: {table.percent(share, 0)}">'
            f"{escape(cell)}</td>"
            for name, cell, share in zip(header[1:], row[1:], shares[index], strict=True)
        )
        + "</tr>"
        for index, row in enumerate(body)
    ]
    note = ('<p class="caption">Counts; the shading is the share of the true class '
            "(hover a cell for it).</p>" if compact else "")
    return [
        f"<h2>Confusion matrix: {escape(run.name)}</h2>",
        note,
        f'<div class="wide"><table class="confusion{" compact" if compact else ""}">'
        "<thead><tr>" + "".join(f"<th>{escape(cell)}</th>" for cell in header)
        + "</tr></thead><tbody>",
        *rows,
        "</tbody></table></div>",
    ]


def _wrong_photos(run: RunSummary) -> list[str]:
    if not run.wrong_photos:
        return []
    parts = [
        f"<h2>Most confidently wrong: {escape(run.name)}</h2>",
        f'<p class="caption">{escape(table.wrong_photos_caption(run))}</p>',
        "<div>",
    ]
    for photo in run.wrong_photos:
        caption = table.wrong_caption(photo.true_class, photo.predicted_class, photo.probability)
        thumbnail = figures.photo_thumbnail(photo.path)
        picture = (
            _img(thumbnail, "image/jpeg", f"{photo.path.name}: {caption}")
            if thumbnail is not None
            else "<p>(photo could not be read)</p>"
        )
        overlay = figures.overlay_thumbnail(photo.gradcam) if photo.gradcam is not None else None
        if overlay is not None:
            picture += _img(overlay, "image/jpeg", f"Grad-CAM of {photo.path.name}")
        parts.append(
            f'<figure title="{escape(str(photo.path))}">{picture}<figcaption>'
            f"{escape(photo.path.name)}<br>{escape(caption)}</figcaption></figure>"
        )
    parts.append("</div>")
    return parts


def _img(data: bytes, mime: str, alt: str, css_class: str = "") -> str:
    source = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    extra = f' class="{css_class}"' if css_class else ""
    return f'<img{extra} src="{source}" alt="{escape(alt)}">'
