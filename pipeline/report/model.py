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


CATS_VS_DOGS = ("cat", "dog")  # the only classes the book's numbers were measured on


@dataclass(frozen=True)
class DatasetSummary:
    """The data the runs trained on: its name, where it is, its classes and sizes.

    ``counts[split][class]`` is the number of photos (empty when the dataset folder could
    not be read; ``split_sizes`` then holds what the runs recorded per split, if anything).
    """

    name: str
    path: str
    class_names: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    layout: str | None = None  # how the source was laid out (kaggle-flat, class-folders ...)

    @property
    def is_cats_vs_dogs(self) -> bool:
        """Whether the book's cats-vs-dogs numbers compare: classes exactly cat and dog."""
        return tuple(name.casefold() for name in self.class_names) == CATS_VS_DOGS

    def split_total(self, split: str) -> int | None:
        if split in self.counts:
            return sum(self.counts[split].values())
        return self.split_sizes.get(split)


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
    extraction run): its curves are drawn after the parent's epochs. ``model`` is the conv
    base or architecture and ``image_size`` the side it was fed at; ``balanced_accuracy``,
    ``macro_f1`` and ``recall`` (per class) are the test split's, from ``evaluate``.
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
    model: str | None = None
    image_size: int | None = None
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    recall: Mapping[str, float] = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        """Epochs in ``history`` (fewer than ``epochs`` after early stopping), else ``epochs``."""
        lengths = [len(values) for values in self.history.values()]
        return max(lengths) if lengths else self.epochs


@dataclass(frozen=True)
class Report:
    """Everything one report shows: the runs, in the order the table lists them.

    ``book_references``: whether the book's cats-vs-dogs numbers are shown beside the runs;
    None decides from the data: shown only when every dataset (or, without datasets, every
    confusion matrix) has exactly the classes cat and dog. On other data they compare
    nothing, so a flowers report never quotes them.
    """

    runs: tuple[RunSummary, ...]
    title: str = "Small-data image classification: strategies compared"
    dataset: str = ""  # a line about the data, e.g. "cats vs dogs, 2,000 training photos"
    datasets: tuple[DatasetSummary, ...] = ()
    book_references: bool | None = None

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

    @property
    def shows_book(self) -> bool:
        if self.book_references is not None:
            return self.book_references
        if self.datasets:
            return all(dataset.is_cats_vs_dogs for dataset in self.datasets)
        classes = {run.confusion.class_names for run in self.runs if run.confusion}
        return bool(classes) and all(
            tuple(name.casefold() for name in names) == CATS_VS_DOGS for names in classes)


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
