"""The report's tables as plain strings, shared by the HTML and the Markdown writer.

Values are formatted here once (accuracies as percentages, wall time in seconds or
minutes), so both versions of the report say exactly the same thing; each writer only
escapes the strings for its own format.
"""

from __future__ import annotations

from pipeline.report.model import BOOK_SOURCE, ConfusionMatrix, Report, RunSummary, book_reference

STRATEGY_COLUMNS = (
    "Strategy", "Kind", "Validation accuracy", "Test accuracy", "Epochs", "Wall time",
    "Trainable parameters", "Book's reference",
)
BOOK_COLUMN_NOTE = (
    "Book's reference: the accuracy Deep Learning with Python reports for the same strategy "
    "(see the book's reference numbers below), not a result of this project."
)
CONFUSION_CORNER = "true \\ predicted"


def percent(value: float | None, digits: int = 1) -> str:
    """``0.9683`` -> ``96.8%``; None -> an em dash (not measured)."""
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def duration(seconds: float) -> str:
    """``75.2`` -> ``1 min 15 s``; under a minute in seconds with one decimal."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def book_cell(kind: str) -> str:
    """The book's number for ``kind``, naming which accuracy it is: ``≈ 90% validation``."""
    reference = book_reference(kind)
    if reference is None:
        return "—"
    return f"≈ {100 * reference.accuracy:g}% {reference.split}"


def strategy_row(run: RunSummary) -> tuple[str, ...]:
    """One row of the strategies table, in ``STRATEGY_COLUMNS`` order."""
    return (
        run.name, run.kind, percent(run.val_accuracy), percent(run.test_accuracy),
        str(run.epochs_run) + (f" (after {run.parent})" if run.parent else ""),
        duration(run.wall_time_s), f"{run.trainable_params:,}", book_cell(run.kind),
    )


def strategy_rows(report: Report) -> list[tuple[str, ...]]:
    return [strategy_row(run) for run in report.runs]


def book_caption() -> str:
    """Where the reference column comes from: the book, not this project's runs."""
    return (
        f"Book's reference: the accuracies reported in {BOOK_SOURCE}; not measured here, "
        "and on other data or another split they are only a rough guide."
    )


def confusion_rows(matrix: ConfusionMatrix) -> list[tuple[str, ...]]:
    """Header then one row per true class: counts with the share of the row (recall)."""
    rows = [(CONFUSION_CORNER, *matrix.class_names)]
    for name, counts in zip(matrix.class_names, matrix.counts, strict=True):
        total = sum(counts)
        cells = [f"{count} ({percent(count / total, 0) if total else '—'})" for count in counts]
        rows.append((name, *cells))
    return rows


def row_shares(matrix: ConfusionMatrix) -> list[list[float]]:
    """Each count as a share of its true class (0 for an empty class), for shading cells."""
    return [[count / sum(row) if sum(row) else 0.0 for count in row] for row in matrix.counts]


def wrong_caption(true_class: str, predicted_class: str, probability: float) -> str:
    return f"true {true_class}, predicted {predicted_class} ({percent(probability)})"
