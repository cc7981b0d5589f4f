"""Which photo goes to which split: decoded first, so a bad file never enters a dataset.

Three ways, one per kind of source and split (``splits.py``):

* whole counts: photos per class in order (or shuffled), decoded one by one until each split
  has its count; a bad photo is skipped and the next good one takes its place, so only as
  many are decoded as the split needs (a corrupt ``cat.5.jpg`` moves ``cat.1000.jpg`` into
  training and every later split one id along).
* fractions: every photo of each class is decoded, the good ones shuffled with a generator
  seeded by (seed, class), so a class's draw does not depend on the others, and shared out
  by ``splits.allocate``.
* a pre-split source: each split's photos as given; a split it lacks (validation, or test)
  is drawn from its train/ photos, by the fractions' shares of the splits drawn from it.

Each split's photos are listed in natural file order, whatever order they were drawn in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.images import ImageCheck, check_image
from pipeline.data.layouts import SourceScan, natural_key, shown
from pipeline.data.manifest import SPLITS
from pipeline.data.progress import StderrProgress
from pipeline.data.splits import SplitRule, allocate, smallest_splittable
from pipeline.errors import PipelineError


@dataclass
class Pick:
    """One photo, checked, and where it goes."""

    check: ImageCheck
    split: str
    label: str


@dataclass
class Selection:
    """The photos chosen, those passed over as unusable, and how many were decoded."""

    picks: list[Pick]
    bad: list[tuple[Path, str]]
    checked: int
    drawn: tuple[str, ...] = ()  # splits a pre-split source lacked, drawn from its train/


def select(scan: SourceScan, rule: SplitRule, seed: int, progress: bool) -> Selection:
    """The picks of ``scan`` under ``rule`` (see the module's docstring)."""
    if scan.given is not None:
        return _select_given(scan, rule, seed, progress)
    if rule.fractions is not None:
        return _select_fractions(scan, rule.fractions, seed, progress)
    return _select_counts(scan, rule, seed, progress)


def _select_counts(scan: SourceScan, rule: SplitRule, seed: int, progress: bool) -> Selection:
    """Decode photos per class, in order, until each class has enough good ones."""
    sizes = rule.counts or {}
    needed = sum(sizes.values())
    for label, files in scan.classes.items():
        if len(files) < needed:  # fail before decoding anything
            raise _too_few(label, scan.source, len(files), 0, sizes)

    bar = StderrProgress("checking images", needed * len(scan.classes), enabled=progress)
    chosen = Selection([], [], 0)
    try:
        for label, files in scan.classes.items():
            order = _drawn(files, seed, label) if rule.shuffle else list(files)
            good: list[ImageCheck] = []
            class_bad = 0
            for path in order:
                if len(good) == needed:
                    break
                check = _checked(path, chosen, bar)
                if check.ok:
                    good.append(check)
                else:
                    class_bad += 1
            if len(good) < needed:
                raise _too_few(label, scan.source, len(good), class_bad, sizes)
            chosen.picks.extend(_shared_out(good, label, sizes))
    finally:
        bar.close()
    return chosen


def _select_fractions(scan: SourceScan, fractions: dict[str, float], seed: int,
                      progress: bool) -> Selection:
    """Decode every photo; share each class's good ones out by ``fractions``, at random."""
    smallest = smallest_splittable(fractions)
    for label, files in scan.classes.items():
        if len(files) < smallest:  # fail before decoding anything
            raise _too_small(label, scan.source, len(files), 0, fractions)
    bar = StderrProgress("checking images", sum(map(len, scan.classes.values())),
                         enabled=progress)
    chosen = Selection([], [], 0)
    try:
        for label, files in scan.classes.items():
            good = _good(files, chosen, bar)
            if len(good) < smallest:
                raise _too_small(label, scan.source, len(good), len(files) - len(good),
                                 fractions)
            order = _drawn(good, seed, label)
            chosen.picks.extend(_shared_out(order, label, allocate(len(order), fractions)))
    finally:
        bar.close()
    return chosen


def _select_given(scan: SourceScan, rule: SplitRule, seed: int, progress: bool) -> Selection:
    """Each split of a pre-split source as given; the ones it lacks drawn from train/."""
    given = scan.given or {}
    drawn = tuple(split for split in SPLITS if split not in given)
    if not drawn and not rule.default:
        raise PipelineError(
            f"`source` {shown(scan.source)}: is already split into train, validation and "
            "test folders, which are used as given; leave out `split`, `train`, `validation` "
            "and `test`"
        )
    if rule.counts is not None and not rule.default:
        raise PipelineError(
            f"`source` {shown(scan.source)}: is already split; the splits it lacks "
            f"({', '.join(drawn)}) are drawn from train/ by fractions: give `split`, not "
            "`train`, `validation` or `test`"
        )
    fractions = rule.fractions or {}
    shares = {split: fractions[split] for split in ("train", *drawn)}
    total = sum(shares.values())
    shares = {split: share / total for split, share in shares.items()}
    bar = StderrProgress("checking images", sum(len(f) for s in given.values()
                                                for f in s.values()), enabled=progress)
    chosen = Selection([], [], 0, drawn)
    try:
        for split, classes in given.items():
            for label, files in classes.items():
                good = _good(files, chosen, bar)
                if split != "train" or not drawn:
                    chosen.picks.extend(Pick(check, split, label) for check in good)
                    continue
                if len(good) < smallest_splittable(shares):
                    raise _too_small(label, scan.source / "train", len(good),
                                     len(files) - len(good), shares)
                order = _drawn(good, seed, label)
                chosen.picks.extend(_shared_out(order, label, allocate(len(order), shares)))
    finally:
        bar.close()
    _every_class_in_every_split(scan, chosen)
    return chosen


def _every_class_in_every_split(scan: SourceScan, chosen: Selection) -> None:
    """A given split whose class held only unusable photos would train or test without it."""
    have = {(pick.split, pick.label) for pick in chosen.picks}
    for split in scan.given or {}:
        for label in scan.classes:
            if (split, label) not in have:
                raise PipelineError(
                    f"`source` {shown(scan.source)}: {split} class {label!r} has no usable "
                    "photos (every one was skipped); add good photos to it or remove the class"
                )


def _good(files: list[Path], chosen: Selection, bar: StderrProgress) -> list[ImageCheck]:
    return [check for check in (_checked(path, chosen, bar) for path in files) if check.ok]


def _checked(path: Path, chosen: Selection, bar: StderrProgress) -> ImageCheck:
    check = check_image(path)
    chosen.checked += 1
    bar.add(1)
    if not check.ok:
        chosen.bad.append((path, check.reason or "unusable"))
    return check


def _drawn(items: list, seed: int, label: str) -> list:
    """``items`` shuffled by a generator of its own, seeded by (seed, class name)."""
    order = list(items)
    random.Random(f"{seed}:{label}").shuffle(order)
    return order


def _shared_out(good: list[ImageCheck], label: str, sizes: dict[str, int]) -> list[Pick]:
    """The first ``sizes[train]`` photos train, the next validate, the next test; each
    split's listed in natural order."""
    picks, start = [], 0
    for split in SPLITS:
        chunk = sorted(good[start : start + sizes.get(split, 0)], key=lambda c: natural_key(c.path))
        start += sizes.get(split, 0)
        picks.extend(Pick(check, split, label) for check in chunk)
    return picks


def _too_few(label: str, source: Path, good: int, bad: int, sizes: dict[str, int]) -> PipelineError:
    needed = sum(sizes.values())
    found = f"{good} usable images" + (f" ({bad} unreadable ones skipped)" if bad else "")
    return PipelineError(
        f"`source` {shown(source)}: class '{label}' has {found}, but `train` {sizes['train']}, "
        f"`validation` {sizes['validation']} and `test` {sizes['test']} need {needed}; "
        "ask for fewer with smaller `train`, `validation` or `test`, or give fractions with "
        "`split` (e.g. 0.8,0.1,0.1) to use every photo"
    )


def _too_small(label: str, source: Path, good: int, bad: int,
               fractions: dict[str, float]) -> PipelineError:
    needed = smallest_splittable(fractions)
    splits = [split for split in SPLITS if fractions.get(split, 0) > 0]
    found = f"{good} usable photo{'s' * (good != 1)}" + (
        f" ({bad} unreadable ones skipped)" if bad else "")
    return PipelineError(
        f"`source` {shown(source)}: class '{label}' has {found}, too few to split: "
        f"{', '.join(splits)} need at least {needed} (one each); add photos to it, remove "
        "the class, or give `split` a 0 for validation or test"
    )
