"""Predictions as text: an aligned table for people, JSON or CSV for other programs."""

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


def _csv(rows: Sequence[Prediction]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = row.as_dict()
        probability = values["probability"]
        values["probability"] = "" if probability is None else f"{probability:.6f}"
        writer.writerow(["" if values[c] is None else values[c] for c in COLUMNS])
    return buffer.getvalue().rstrip("\n")


def _table(rows: Sequence[Prediction]) -> str:
    cells = [("path", "class", "probability")]
    for row in rows:
        if row.error is not None:
            cells.append((str(row.path), "-", f"error: {row.error}"))
        else:
            cells.append((str(row.path), str(row.label), f"{row.probability:.4f}"))
    widths = [max(len(line[i]) for line in cells) for i in range(2)]
    return "\n".join(
        f"{path:<{widths[0]}}  {label:<{widths[1]}}  {last}" for path, label, last in cells
    )
