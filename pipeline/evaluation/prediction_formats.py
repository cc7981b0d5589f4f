"""Predictions as text: an aligned table for people, JSON or CSV for other programs.

JSON and CSV carry every class's probability (a program may want its own threshold, or the
runner-up); the table shows the ``top`` classes each row was predicted with (``--top-k``).
CSV columns: ``path, class, probability, error``, then ``class_2, probability_2`` ... up to
the ``top_k`` asked for, then ``p(<class>)`` for every class in class-index order (no class
name can collide with a fixed column: those have no parentheses).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import Prediction

FORMATS = ("table", "json", "csv")
COLUMNS = ("path", "class", "probability", "error")


def format_predictions(rows: Sequence[Prediction], fmt: str = "table") -> str:
    """Render rows as ``table``, ``json`` (a list of objects) or ``csv`` (with a header)."""
    if fmt == "json":
        return json.dumps([row.as_dict() for row in rows], indent=2)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "table":
        return _table(rows)
    raise PipelineError(f"`fmt` {fmt!r}: choose one of {', '.join(FORMATS)}")


def class_column(name: str) -> str:
    """The CSV column of class ``name``'s probability."""
    return f"p({name})"


def _classes(rows: Sequence[Prediction]) -> list[str]:
    """The class names of the rows, in class-index order (every predicted row has all)."""
    return next((list(row.probabilities) for row in rows if row.probabilities), [])


def _csv(rows: Sequence[Prediction]) -> str:
    classes = _classes(rows)
    ranks = range(2, max((len(row.top) for row in rows), default=1) + 1)
    header = [*COLUMNS, *(f"{what}_{rank}" for rank in ranks for what in ("class", "probability")),
              *map(class_column, classes)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        values = row.as_dict()
        cells = ["" if values[c] is None else values[c] for c in COLUMNS]
        cells[2] = _number(row.probability)
        for rank in ranks:
            name, p = row.top[rank - 1] if len(row.top) >= rank else ("", None)
            cells += [name, _number(p)]
        cells += [_number(row.probabilities.get(name)) for name in classes]
        writer.writerow(cells)
    return buffer.getvalue().rstrip("\n")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _table(rows: Sequence[Prediction]) -> str:
    shown = max((len(row.top) for row in rows), default=1)
    if shown <= 1:
        cells = [("path", "class", "probability")]
        for row in rows:
            if row.error is not None:
                cells.append((str(row.path), "-", f"error: {row.error}"))
            else:
                cells.append((str(row.path), str(row.label), f"{row.probability:.4f}"))
    else:
        cells = [("path", *(f"top {rank}" for rank in range(1, shown + 1)))]
        for row in rows:
            if row.error is not None:
                cells.append((str(row.path), f"error: {row.error}", *[""] * (shown - 1)))
            else:
                cells.append((str(row.path), *(f"{name} {p:.4f}" for name, p in row.top),
                              *[""] * (shown - len(row.top))))
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]) - 1)]
    return "\n".join(
        ("  ".join(f"{cell:<{width}}" for cell, width in zip(line, widths, strict=False))
         + f"  {line[-1]}").rstrip() for line in cells
    )
