"""The report's tables as plain strings, shared by the HTML and the Markdown writer.

Values are formatted here once (accuracies as percentages, wall time in seconds or
minutes), so both versions of the report say exactly the same thing; each writer only
escapes the strings for its own format.
"""

from __future__ import annotations

from pipeline.report.model import (
    BOOK_SOURCE,
    ConfusionMatrix,
    DatasetSummary,
    Report,
    RunSummary,
    book_reference,
)

ENSEMBLE = "ensemble"  # a run kind that trains no epochs (pipeline.workflows.ensemble)
BOOK_COLUMN = "Book's reference"
STRATEGY_COLUMNS = (
    "Strategy", "Kind", "Model", "Validation accuracy", "Test accuracy", "Balanced accuracy",
    "Macro F1", "Epochs", "Wall time", "Trainable parameters", BOOK_COLUMN,
)
SPLITS = ("train", "validation", "test")
# From this many classes on, a confusion matrix shows counts only (the share is the shading
# and the cell's tooltip) and its column labels stand upright, so 17 classes fit the page.
COMPACT_CLASSES = 8
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


def strategy_columns(report: Report) -> tuple[str, ...]:
    """The strategies table's columns: the book's only beside cats vs dogs."""
    return STRATEGY_COLUMNS if report.shows_book else STRATEGY_COLUMNS[:-1]


def model_cell(run: RunSummary) -> str:
    """``vgg16, 150 px``: the base or architecture and the side it was fed at."""
    size = f"{run.image_size} px" if run.image_size else ""
    model = (run.model or "").replace("+", " + ")  # an ensemble's bases: a cell may wrap there
    return ", ".join(part for part in (model, size) if part) or "—"


def strategy_row(run: RunSummary, book: bool = True) -> tuple[str, ...]:
    """One row of the strategies table, in ``STRATEGY_COLUMNS`` order (``book``: with its
    last column)."""
    row = (
        run.name, run.kind, model_cell(run), percent(run.val_accuracy),
        percent(run.test_accuracy), percent(run.balanced_accuracy),
        "—" if run.macro_f1 is None else f"{run.macro_f1:.3f}",
        "—" if run.kind == ENSEMBLE else
        str(run.epochs_run) + (f" (after {run.parent})" if run.parent else ""),
        duration(run.wall_time_s), f"{run.trainable_params:,}", book_cell(run.kind),
    )
    return row if book else row[:-1]


def wrong_photos_caption(run: RunSummary) -> str:
    """What the most-confidently-wrong section shows; Grad-CAM named only when it is there
    (an ensemble's several bases have no one last convolution to explain)."""
    text = "The test photos this run got wrong with the highest probability for the wrong class"
    if any(photo.gradcam is not None for photo in run.wrong_photos):
        return f"{text}; Grad-CAM shows where it looked."
    return f"{text}."


def strategy_rows(report: Report) -> list[tuple[str, ...]]:
    return [strategy_row(run, report.shows_book) for run in report.runs]


def strategies_note(report: Report) -> str:
    """What the table's less obvious columns mean."""
    note = ("Balanced accuracy: the mean of the per-class recalls of the test split; macro F1: "
            "the mean per-class F1. Both weigh every class the same, where accuracy weighs "
            "the large classes more.")
    return f"{note} {BOOK_COLUMN_NOTE}" if report.shows_book else note


def dataset_line(dataset: DatasetSummary) -> str:
    """``flowers (data/flowers): 17 classes; train 952, validation 204, test 204 photos``."""
    sizes = [f"{split} {dataset.split_total(split):,}" for split in SPLITS
             if dataset.split_total(split) is not None]
    layout = f", prepared from a {dataset.layout} source" if dataset.layout else ""
    return (f"{dataset.name} ({dataset.path}): {len(dataset.class_names)} classes"
            + (f"; {', '.join(sizes)} photos" if sizes else "") + layout)


def dataset_rows(dataset: DatasetSummary) -> list[tuple[str, ...]]:
    """Header then photos per class and split, then the totals; [] when sizes are unknown."""
    if not dataset.counts:
        return []
    splits = [split for split in SPLITS if split in dataset.counts]
    rows = [("Class", *splits, "total")]
    for name in dataset.class_names:
        counts = [dataset.counts[split].get(name, 0) for split in splits]
        rows.append((name, *map(str, counts), str(sum(counts))))
    totals = [dataset.split_total(split) or 0 for split in splits]
    rows.append(("all classes", *map(str, totals), str(sum(totals))))
    return rows


def recall_rows(report: Report) -> list[tuple[str, ...]]:
    """Header (class, then each run with test recalls) and one row per class; [] if none."""
    runs = [run for run in report.runs if run.recall]
    if not runs:
        return []
    classes = list(dict.fromkeys(name for run in runs for name in run.recall))
    return [("Class", *(run.name for run in runs)),
            *((name, *(percent(run.recall.get(name)) for run in runs)) for name in classes)]


def book_caption() -> str:
    """Where the reference column comes from: the book, not this project's runs."""
    return (
        f"Book's reference: the accuracies reported in {BOOK_SOURCE}; not measured here, "
        "and on other data or another split they are only a rough guide."
    )


def confusion_rows(matrix: ConfusionMatrix, compact: bool | None = None) -> list[tuple[str, ...]]:
    """Header then one row per true class: counts with the share of the row (recall).

    ``compact`` (default: from ``COMPACT_CLASSES`` classes on) leaves the share out of the
    cell text, so a wide matrix still fits.
    """
    if compact is None:
        compact = len(matrix.class_names) >= COMPACT_CLASSES
    rows = [(CONFUSION_CORNER, *matrix.class_names)]
    for name, counts in zip(matrix.class_names, matrix.counts, strict=True):
        total = sum(counts)
        cells = [str(count) if compact else
                 f"{count} ({percent(count / total, 0) if total else '—'})" for count in counts]
        rows.append((name, *cells))
    return rows


def row_shares(matrix: ConfusionMatrix) -> list[list[float]]:
    """Each count as a share of its true class (0 for an empty class), for shading cells."""
    return [[count / sum(row) if sum(row) else 0.0 for count in row] for row in matrix.counts]


def wrong_caption(true_class: str, predicted_class: str, probability: float) -> str:
    return f"true {true_class}, predicted {predicted_class} ({percent(probability)})"
