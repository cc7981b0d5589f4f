"""Preparing a small dataset: the classic train/validation/test split of a folder of photos.

The default reproduces the split of Chollet's *Deep Learning with Python*: for each class, in
id order, the first 1,000 photos train, the next 500 validate, the next 500 test. On Kaggle's
``train/`` folder that is exactly ids 0-999, 1000-1499 and 1500-1999. Photos that fail
``check_image`` are skipped and listed, and the next good one takes their place, so a corrupt
``cat.5.jpg`` moves ``cat.1000.jpg`` into training and every later split one id along.

The source is only ever read. Output files are copies of the source photos (reflinks where
the file system shares blocks between files: instant and no extra disk, yet independent
files), and re-encoded RGB JPEGs for photos TensorFlow cannot read as they are. Hard links
(``link=True``) save disk everywhere but make each dataset file the very same file as its
photo: editing or ``chmod``-ing either changes both. The manifest records how each file was
made. The dataset is built in a hidden folder and moved into place when complete, so a full
disk or an interrupted run leaves no partial dataset, and what a killed run left is cleared
by the next one (see ``destination.py``).

Each file keeps its photo's name where it can. A name that is not valid UTF-8 (or holds a
control character) is stored under a valid one (``caf%E9.jpg``, ``layouts.portable_name``)
and one too long for the destination's file system is cut and tagged (``photo_files.py``):
the same photo gets the same name every time. The manifest records each file's source name,
escaped where it is not UTF-8 (``caf\\xe9.jpg``).
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pipeline.data.defaults import DATA_ROOT, DATASET_NAME, DEFAULT_SEED
from pipeline.data.destination import building, check_destination, clear_leftovers
from pipeline.data.images import ImageCheck, check_image, write_rgb_jpeg
from pipeline.data.layouts import SourceScan, natural_key, portable_name, scan_source, shown
from pipeline.data.manifest import (
    MANIFEST_NAME,
    SPLITS,
    build_manifest,
    file_entry,
    file_sha256,
    write_manifest,
)
from pipeline.data.photo_files import copy_file, name_max_of, try_hard_link, unique_name
from pipeline.errors import PipelineError
from pipeline.system.paths import check_writable_folder, child_path

__all__ = ["PrepareConfig", "PrepareResult", "file_sha256", "prepare_dataset"]

@dataclass
class PrepareConfig:
    """Where the photos are, where the dataset goes, and how many photos per class per split."""

    source: Path
    data_root: Path = DATA_ROOT
    name: str = DATASET_NAME
    train: int = 1000
    validation: int = 500
    test: int = 500
    shuffle: bool = False  # False: first photos in id order (the book's split); True: random
    seed: int = DEFAULT_SEED  # used only with shuffle
    force: bool = False  # replace an existing dataset of the same name (only one we wrote)
    # Hard-link unchanged photos instead of copying them. A hard link IS the photo: the
    # dataset file and the source file share bytes, permissions and owner, so editing or
    # chmod-ing either changes the other. Saves disk; off by default.
    link: bool = False

    @property
    def dataset_dir(self) -> Path:
        """``data_root/name``, once ``name`` is proven a plain folder name."""
        return child_path(self.data_root, self.name, "name")

    def sizes(self) -> dict[str, int]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


@dataclass
class PrepareResult:
    """What ``prepare_dataset`` wrote; ``skipped`` holds every file passed over, with why."""

    dataset_dir: Path
    manifest_path: Path
    layout: str
    classes: list[str]
    counts: dict[str, dict[str, int]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    checked: int = 0  # photos decoded (only as many as the split needs, plus bad ones)
    linked: int = 0
    copied: int = 0
    reflinked: int = 0  # copies sharing blocks with the photo (copy-on-write file systems)
    converted: int = 0
    replaced: bool = False  # an older dataset of the same name was removed first
    # What is worth telling and is no failure: leftovers of ended runs cleared or left alone,
    # a stop that came once the new dataset was in place.
    notes: list[str] = field(default_factory=list)

    def summary(self, max_skipped: int = 20) -> str:
        """A few lines for the terminal: counts per split and class, and what was skipped."""
        lines = [f"prepared {shown(self.dataset_dir)} ({self.layout} layout)"]
        for split, per_class in self.counts.items():
            counts = ", ".join(f"{label} {count}" for label, count in per_class.items())
            lines.append(f"  {split}: {counts}")
        made = [f"{self.copied} copied"]
        if self.reflinked:
            made.append(f"{self.reflinked} reflinked")
        if self.linked:
            made.append(f"{self.linked} hard-linked")
        lines.append(
            f"  {', '.join(made)}, {self.converted} converted to RGB JPEG; "
            f"{self.checked} images checked"
        )
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} files:")
            lines.extend(f"    {shown(path)}: {reason}"
                         for path, reason in self.skipped[:max_skipped])
            if len(self.skipped) > max_skipped:
                lines.append(f"    ... and {len(self.skipped) - max_skipped} more, all listed in")
                lines.append(f"    {shown(self.manifest_path)}")
        if self.replaced:
            lines.append("  (replaced the previous dataset of that name)")
        lines.extend(f"  {shown(note)}" for note in self.notes)
        lines.append(f"  manifest: {shown(self.manifest_path)}")
        return "\n".join(lines)


@dataclass
class _Pick:
    check: ImageCheck
    split: str
    label: str


def prepare_dataset(config: PrepareConfig, progress: bool = True) -> PrepareResult:
    """Check, split and write the photos of ``config.source`` into ``data_root/name``.

    Everything that can be refused is refused before the destination is touched: bad
    options, an unknown layout, too few good photos, a destination that is not ours, a
    ``data_root`` that is a file or read-only. A full disk while writing removes what was
    written and leaves an older dataset of the same name as it was.
    """
    sizes = _validated_sizes(config)
    dataset_dir = config.dataset_dir
    check_writable_folder(dataset_dir.parent, "data_root")
    scan = scan_source(config.source)
    source = scan.source.resolve()
    _refuse_overlap(source, dataset_dir.resolve())
    notes = clear_leftovers(dataset_dir.parent)  # first: a dataset put back counts as there
    replacing = check_destination(dataset_dir, config.force)

    picks, bad, checked = _select(scan, sizes, config, progress)

    skipped = [*scan.ignored, *bad]
    classes = list(scan.classes)
    with building(dataset_dir, config.force, notes=notes) as partial:
        entries, stats = _write_picks(picks, scan.source, partial, config.link, progress)
        manifest = build_manifest(
            source=shown(source),
            layout=scan.layout,
            selection="shuffle" if config.shuffle else "first",
            seed=config.seed if config.shuffle else None,
            requested=sizes,
            classes=classes,
            splits=entries,
            skipped=[(_relative_name(path, scan.source), reason) for path, reason in skipped],
            link=config.link,
        )
        write_manifest(partial, manifest)
    return PrepareResult(
        dataset_dir=dataset_dir,
        manifest_path=dataset_dir / MANIFEST_NAME,
        layout=scan.layout,
        classes=classes,
        counts=manifest["counts"],
        skipped=skipped,
        checked=checked,
        replaced=replacing,
        notes=notes,
        **stats,
    )


def _validated_sizes(config: PrepareConfig) -> dict[str, int]:
    sizes = config.sizes()
    for split, count in sizes.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PipelineError(f"`{split}` {count!r}: must be a whole number of images, 0 or more")
    if sizes["train"] == 0:
        raise PipelineError("`train` 0: a dataset needs at least 1 training image per class")
    return sizes


def _refuse_overlap(source: Path, dataset_dir: Path) -> None:
    if dataset_dir == source or source in dataset_dir.parents:
        raise PipelineError(
            f"`source` {source}: the dataset would be written inside it ({dataset_dir}); "
            "choose a `data_root` outside the source folder"
        )
    if dataset_dir in source.parents:
        raise PipelineError(
            f"`source` {source}: lies inside the dataset folder {dataset_dir}, which "
            "preparing replaces; move the photos or choose another `name`"
        )


def _select(
    scan: SourceScan, sizes: dict[str, int], config: PrepareConfig, progress: bool
) -> tuple[list[_Pick], list[tuple[Path, str]], int]:
    """Decode photos per class, in order, until each class has enough good ones."""
    needed = sum(sizes.values())
    for label, files in scan.classes.items():
        if len(files) < needed:  # fail before decoding anything
            raise _too_few(label, scan.source, len(files), 0, sizes)

    bar = StderrProgress("checking images", needed * len(scan.classes), enabled=progress)
    picks: list[_Pick] = []
    bad: list[tuple[Path, str]] = []
    checked = 0
    try:
        for label, files in scan.classes.items():
            order = list(files)
            if config.shuffle:
                # One generator per class, seeded by name: a class's draw does not depend on
                # how many photos the other classes have.
                random.Random(f"{config.seed}:{label}").shuffle(order)
            good: list[ImageCheck] = []
            class_bad = 0
            for path in order:
                if len(good) == needed:
                    break
                check = check_image(path)
                checked += 1
                if check.ok:
                    good.append(check)
                    bar.add(1)
                else:
                    bad.append((path, check.reason or "unusable"))
                    class_bad += 1
            if len(good) < needed:
                raise _too_few(label, scan.source, len(good), class_bad, sizes)
            picks.extend(_split_in_order(good, label, sizes, sort=config.shuffle))
    finally:
        bar.close()
    return picks, bad, checked


def _split_in_order(
    good: list[ImageCheck], label: str, sizes: dict[str, int], sort: bool
) -> list[_Pick]:
    picks, start = [], 0
    for split in SPLITS:
        chunk = good[start : start + sizes[split]]
        start += sizes[split]
        if sort:  # a random draw is still listed in natural order, for readable folders
            chunk = sorted(chunk, key=lambda c: natural_key(c.path))
        picks.extend(_Pick(check, split, label) for check in chunk)
    return picks


def _too_few(label: str, source: Path, good: int, bad: int, sizes: dict[str, int]) -> PipelineError:
    needed = sum(sizes.values())
    found = f"{good} usable images" + (f" ({bad} unreadable ones skipped)" if bad else "")
    return PipelineError(
        f"`source` {source}: class '{label}' has {found}, but `train` {sizes['train']}, "
        f"`validation` {sizes['validation']} and `test` {sizes['test']} need {needed}; "
        "ask for fewer with smaller `train`, `validation` or `test`"
    )


def _write_picks(
    picks: list[_Pick], source_root: Path, dataset_dir: Path, link: bool, progress: bool
) -> tuple[dict[str, dict[str, list[dict]]], dict[str, int]]:
    entries: dict[str, dict[str, list[dict]]] = {split: {} for split in SPLITS}
    for split in SPLITS:
        for label in dict.fromkeys(p.label for p in picks):
            entries[split][label] = []
    used_names: dict[Path, set[str]] = {}
    name_max = name_max_of(dataset_dir)
    stats = {"linked": 0, "copied": 0, "reflinked": 0, "converted": 0}
    bar = StderrProgress("writing dataset", len(picks), enabled=progress)
    try:
        for pick in picks:
            folder = dataset_dir / pick.split / pick.label
            if folder not in used_names:
                folder.mkdir(parents=True, exist_ok=True)
                used_names[folder] = set()
            src = pick.check.path
            converted = pick.check.needs_conversion
            wanted = portable_name(src.name)
            if converted:
                wanted = os.path.splitext(wanted)[0] + ".jpg"
            dst = folder / unique_name(wanted, used_names[folder], name_max)
            if converted:
                write_rgb_jpeg(src, dst)
                made = "converted"
            elif link and try_hard_link(src, dst):
                made = "link"
            else:
                # Once a link fails (other file system, protected_hardlinks) the rest will too.
                link = False
                made = copy_file(src, dst)
            stats[_STAT_OF[made]] += 1
            entries[pick.split][pick.label].append(
                file_entry(dst, made=made, source=_relative_name(src, source_root),
                           converted=converted)
            )
            bar.add(1)
    finally:
        bar.close()
    return entries, stats


_STAT_OF = {"converted": "converted", "link": "linked", "copy": "copied", "reflink": "reflinked"}


def _relative_name(path: Path, root: Path) -> str:
    # Every path came from listing ``root``, so no resolving (which would follow symlinks).
    try:
        return shown(Path(path).relative_to(root).as_posix())
    except ValueError:
        return shown(path)


class StderrProgress:
    """A one-line progress bar on stderr (stdout stays free for the summary), or nothing."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream: TextIO | None = None):
        self.label, self.total, self.enabled = label, max(total, 0), enabled and total > 0
        self.stream = stream or sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = -1  # the count last shown, so close() does not repeat the final line

    def add(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._last_draw = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled:
            if self._drawn != self.done:
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def _draw(self, now: float) -> None:
        width = 30
        filled = int(width * min(self.done, self.total) / self.total)
        self._drawn = self.done
        elapsed = now - self._start
        rate = f"{self.done / elapsed:.0f}/s" if elapsed > 0 else ""
        self.stream.write(
            f"\r{self.label}: {self.done}/{self.total} [{'=' * filled}{'.' * (width - filled)}]"
            f" {elapsed:.0f}s {rate}"
        )
        self.stream.flush()
