"""The report's typed inputs refuse what cannot be drawn, and say which field is wrong."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.errors import PipelineError
from pipeline.report import ConfusionMatrix, Report, RunSummary
from pipeline.report.model import BOOK_REFERENCES, book_reference, epoch_offset
from pipeline.report.table import book_cell, duration, percent, strategy_row


def _run(name: str, parent: str | None = None, epochs: int = 5) -> RunSummary:
    history = {"accuracy": [0.5] * epochs}
    return RunSummary(name, "extract", 0.9, None, epochs, 1.0, 10, history, parent=parent)


def test_the_books_numbers_are_the_ones_the_book_reports():
    numbers = {ref.kind: (ref.accuracy, ref.split) for ref in BOOK_REFERENCES}
    assert numbers == {
        "scratch": (0.71, "validation"),
        "scratch-augment": (0.82, "validation"),
        "extract": (0.90, "validation"),
        "extract-augment": (0.96, "validation"),
        "finetune": (0.968, "test"),
    }
    assert book_reference("netvlad") is None


def test_fine_tuning_continues_after_its_parents_epochs():
    report = Report((_run("a", epochs=7), _run("b", "a", epochs=3), _run("c", "b", epochs=2)))
    assert [epoch_offset(report, run) for run in report.runs] == [0, 7, 10]


def test_early_stopping_counts_the_epochs_in_the_history():
    stopped = dataclasses.replace(_run("a", epochs=4), epochs=30)
    report = Report((stopped, _run("b", "a")))
    assert epoch_offset(report, report.runs[1]) == 4


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ((), "at least one run in `runs`"),
        ((_run("a"), _run("a")), "`runs` has the name 'a' twice"),
        ((_run("a", parent="gone"),), "run 'a': `parent` 'gone' is not one"),
        ((_run("a", parent="b"), _run("b", parent="a")), "form a cycle"),
    ],
)
def test_a_report_that_cannot_be_drawn_is_refused(runs, message):
    with pytest.raises(PipelineError, match=message.replace("`", ".")):
        Report(runs)


def test_a_confusion_matrix_must_be_square_in_its_classes():
    with pytest.raises(PipelineError, match="must be 2 x 2"):
        ConfusionMatrix(("cat", "dog"), ((1, 2), (3,)))


def test_table_cells_are_formatted_once_for_both_writers():
    assert percent(0.9683) == "96.8%" and percent(None) == "—"
    assert duration(9.25) == "9.2 s" and duration(75.2) == "1 min 15 s"
    assert duration(3 * 3600 + 125) == "3 h 2 min"
    assert book_cell("finetune") == "≈ 96.8% test" and book_cell("scratch") == "≈ 71% validation"
    assert book_cell("other") == "—"
    row = strategy_row(RunSummary("ft", "finetune", 0.97, 0.962, 20, 61.0, 1_234_567, parent="x"))
    assert row == ("ft", "finetune", "—", "97.0%", "96.2%", "—", "—", "20 (after x)",
                   "1 min 1 s", "1,234,567", "≈ 96.8% test")
    assert strategy_row(RunSummary("ft", "finetune", 0.97, 0.962, 20, 61.0, 1), book=False)[-1] \
        == "1"
