"""How many photos of each class go to train, validation and test: counts or fractions.

Two kinds of split, one rule each:

* whole counts per class (``train``, ``validation``, ``test``): the book's split, 1,000/500/500
  of each class, in file order unless shuffled. The default for Kaggle's cats and dogs (the
  ``kaggle-flat`` and ``petimages`` layouts), where it reproduces the book's dataset.
* fractions (``split``, e.g. ``0.8,0.1,0.1``): every usable photo of each class, drawn at
  random with the seed, class by class (stratified). The default, 0.8/0.1/0.1, for every
  other layout: classes of any and of uneven sizes are used whole, never cut to the smallest.

Rounding gives each class exactly its photos: each split gets its fraction rounded down and
the photos left over go, one each, to the splits with the largest remainders. Validation and
test then get at least one photo of each class when their fraction is above 0 (a class of 3
photos at 0.8/0.1/0.1 gives 1/1/1), taken from the largest split; a class with fewer photos
than the splits that need one is too small to split, and refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.data.defaults import CLASSIC_COUNTS, DEFAULT_FRACTIONS
from pipeline.data.manifest import SPLITS
from pipeline.errors import PipelineError

# The layouts of Kaggle's cats and dogs, whose default is the book's split in counts.
CLASSIC_LAYOUTS = frozenset({"kaggle-flat", "petimages"})
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SplitRule:
    """The split asked for (or the layout's default): ``counts`` or ``fractions``, per split."""

    counts: dict[str, int] | None = None
    fractions: dict[str, float] | None = None
    shuffle: bool = False  # counts only: a random draw instead of file order
    default: bool = False  # the layout's default, not given

    def describe(self, layout: str | None = None) -> str:
        """One line for the summary: what the split is, and whether it was the default."""
        if self.fractions is not None:
            text = (f"{'/'.join(_number(self.fractions[s]) for s in SPLITS)} of each class "
                    "(stratified, seeded), every usable photo")
        else:
            order = "at random" if self.shuffle else "in file order"
            text = (f"{'/'.join(str(self.counts[s]) for s in SPLITS)} photos per class, "
                    f"{order}")
        if self.default:
            text += f" (the default for the {layout} layout)" if layout else " (the default)"
        return text


def parse_fractions(value: object, field: str = "split") -> dict[str, float]:
    """``"0.8,0.1,0.1"`` or ``(0.8, 0.1, 0.1)`` -> {split: fraction}, or one line saying why not."""
    parts: Sequence[object] = value.split(",") if isinstance(value, str) else ()
    if isinstance(value, list | tuple):
        parts = value
    try:
        numbers = [float(str(part).strip()) for part in parts]
    except ValueError:
        numbers = []
    example = ",".join(map(_number, DEFAULT_FRACTIONS))
    if len(numbers) != len(SPLITS) or not all(math.isfinite(n) for n in numbers):
        raise PipelineError(f"`{field}` {_shown(value)}: give three fractions for train, "
                            f"validation and test, separated by commas, e.g. {example}")
    if any(n < 0 for n in numbers) or numbers[0] <= 0:
        raise PipelineError(f"`{field}` {_shown(value)}: fractions are 0 or more, and train's "
                            f"above 0, e.g. {example}")
    if abs(sum(numbers) - 1.0) > _TOLERANCE:
        raise PipelineError(f"`{field}` {_shown(value)}: the fractions add up to "
                            f"{_number(sum(numbers))}, not 1 (every photo is used), e.g. "
                            f"{example}")
    return dict(zip(SPLITS, numbers, strict=True))


def given_counts(train: object, validation: object, test: object) -> dict[str, int] | None:
    """The whole counts given (those left out: the book's), or None when none was given."""
    given = {"train": train, "validation": validation, "test": test}
    if all(count is None for count in given.values()):
        return None
    counts = {}
    for (split, count), classic in zip(given.items(), CLASSIC_COUNTS, strict=True):
        count = classic if count is None else count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PipelineError(f"`{split}` {count!r}: must be a whole number of images, 0 or more")
        counts[split] = count
    if counts["train"] == 0:
        raise PipelineError("`train` 0: a dataset needs at least 1 training image per class")
    return counts


def split_rule(split: object, counts: dict[str, int] | None, shuffle: bool,
               layout: str) -> SplitRule:
    """What was given, else the layout's default: the book's counts for cats and dogs,
    ``DEFAULT_FRACTIONS`` for every other layout."""
    if split is not None and counts is not None:
        raise PipelineError("`split` and `train`/`validation`/`test`: give fractions or whole "
                            "counts per class, not both")
    if split is not None:
        return SplitRule(fractions=parse_fractions(split))
    if counts is not None:
        return SplitRule(counts=counts, shuffle=shuffle)
    if layout in CLASSIC_LAYOUTS:
        return SplitRule(counts=dict(zip(SPLITS, CLASSIC_COUNTS, strict=True)),
                         shuffle=shuffle, default=True)
    return SplitRule(fractions=dict(zip(SPLITS, DEFAULT_FRACTIONS, strict=True)), default=True)


def smallest_splittable(fractions: Mapping[str, float]) -> int:
    """Photos a class needs at least: one for each split whose fraction is above 0."""
    return sum(1 for split in SPLITS if fractions.get(split, 0) > 0)


def allocate(count: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """``count`` photos of one class shared out by ``fractions``: every photo in one split.

    Largest remainders first (ties in split order); then each split whose fraction is above
    0 gets one photo at least, from the largest split holding more than one.
    """
    if count < smallest_splittable(fractions):
        raise ValueError(f"{count} photos cannot be split by {dict(fractions)}")
    exact = {split: count * fractions.get(split, 0.0) for split in SPLITS}
    sizes = {split: math.floor(exact[split] + _TOLERANCE) for split in SPLITS}
    by_remainder = sorted(SPLITS, key=lambda s: (-(exact[s] - sizes[s]), SPLITS.index(s)))
    left = count - sum(sizes.values())  # below 0 only when the tolerance rounded one up
    for split in by_remainder[:left] if left >= 0 else by_remainder[::-1][:-left]:
        sizes[split] += 1 if left >= 0 else -1
    for split in SPLITS:
        if fractions.get(split, 0) > 0 and sizes[split] == 0:
            donor = max(SPLITS, key=lambda s: (sizes[s], -SPLITS.index(s)))
            sizes[donor] -= 1
            sizes[split] += 1
    return sizes


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
