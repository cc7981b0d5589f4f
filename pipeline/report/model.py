"""What a report shows, as typed values: the caller gathers them, the writers only render.

The report never reads run folders itself; whoever has the runs (the ``run`` workflow, the
CLI) fills these dataclasses, so the HTML and Markdown writers can be tested on made-up
values and cannot drift from the run record's format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError

KINDS = ("scratch", "scratch-augment", "extract", "extract-augment", "finetune")


@dataclass(frozen=True)
class BookReference:
    """One accuracy reported in Deep Learning with Python (cats vs dogs, 2,000 training photos)."""

    kind: str
    accuracy: float  # 0..1
    split: str  # "validation" or "test": which accuracy the book quotes
    what: str  # the book's strategy, in words


BOOK_SOURCE = "Deep Learning with Python (F. Chollet), cats vs dogs, 2,000 training photos"
BOOK_REFERENCES: tuple[BookReference, ...] = (
    BookReference("scratch", 0.71, "validation", "small convnet from scratch"),
    BookReference("scratch-augment", 0.82, "validation", "from scratch, augmentation and dropout"),
    BookReference("extract", 0.90, "validation", "fast feature extraction (VGG16)"),
    BookReference("extract-augment", 0.96, "validation", "feature extraction with augmentation"),
    BookReference("finetune", 0.968, "test", "fine-tuning the top of VGG16"),
)


def book_reference(kind: str) -> BookReference | None:
    """The book's number for a strategy ``kind``, or None when the book has none."""
    return next((ref for ref in BOOK_REFERENCES if ref.kind == kind), None)


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of a test set: ``counts[i][j]`` photos of class ``class_names[i]`` predicted as j."""

    class_names: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        size = len(self.class_names)
        if len(self.counts) != size or any(len(row) != size for row in self.counts):
            raise PipelineError(
                f"`counts` of a confusion matrix must be {size} x {size}, one row and column "
                f"per class name"
            )


@dataclass(frozen=True)
class WrongPhoto:
    """A photo the model got wrong, with the probability it gave the wrong class.

    ``gradcam`` is an optional overlay picture (a PNG file or its bytes) of where the
    model looked.
    """

    path: Path
    true_class: str
    predicted_class: str
    probability: float  # 0..1, the model's probability for ``predicted_class``
    gradcam: Path | bytes | None = None


@dataclass(frozen=True)
class RunSummary:
    """One trained strategy as the report shows it.

    ``history`` maps a Keras metric name (``accuracy``, ``val_loss`` ...) to one value per
    epoch. ``parent`` names the run this one continued from (fine-tuning continues an
    extraction run): its curves are drawn after the parent's epochs.
    """

    name: str
    kind: str
    val_accuracy: float | None
    test_accuracy: float | None
    epochs: int
    wall_time_s: float
    trainable_params: int
    history: Mapping[str, Sequence[float]] = field(default_factory=dict)
    parent: str | None = None
    confusion: ConfusionMatrix | None = None
    wrong_photos: tuple[WrongPhoto, ...] = ()

    @property
    def epochs_run(self) -> int:
        """Epochs in ``history`` (fewer than ``epochs`` after early stopping), else ``epochs``."""
        lengths = [len(values) for values in self.history.values()]
        return max(lengths) if lengths else self.epochs


@dataclass(frozen=True)
class Report:
    """Everything one report shows: the runs, in the order the table lists them."""

    runs: tuple[RunSummary, ...]
    title: str = "Small-data image classification: strategies compared"
    dataset: str = ""  # a line about the data, e.g. "cats vs dogs, 2,000 training photos"

    def __post_init__(self) -> None:
        if not self.runs:
            raise PipelineError("a report needs at least one run in `runs`")
        names = [run.name for run in self.runs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PipelineError(f"`runs` has the name {duplicates[0]!r} twice; names must differ")
        for run in self.runs:
            if run.parent is not None and run.parent not in names:
                raise PipelineError(
                    f"run {run.name!r}: `parent` {run.parent!r} is not one of the report's runs"
                )
        for run in self.runs:
            epoch_offset(self, run)  # refuses a cycle of parents now, not while drawing

    def run(self, name: str) -> RunSummary:
        return next(run for run in self.runs if run.name == name)


def epoch_offset(report: Report, run: RunSummary) -> int:
    """Epochs trained before ``run`` started: the sum of its ancestors' epochs."""
    offset, seen, current = 0, {run.name}, run
    while current.parent is not None:
        current = report.run(current.parent)
        if current.name in seen:
            raise PipelineError(f"run {run.name!r}: its `parent` runs form a cycle")
        seen.add(current.name)
        offset += current.epochs_run
    return offset
