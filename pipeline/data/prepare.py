"""Preparing a small dataset: a train/validation/test split of a folder of photos.

The split is whole counts or fractions per class (``splits.py``), or the source's own
(``train/``, ``val/``, ``test/``). Kaggle's cats and dogs keep the book's split by default,
Chollet's *Deep Learning with Python*: for each class, in id order, the first 1,000 photos
train, the next 500 validate, the next 500 test (ids 0-999, 1000-1499 and 1500-1999). Every
other source is split 0.8/0.1/0.1 by default, every photo of each class used, uneven classes
kept as they are. Photos that fail ``check_image`` are skipped and listed (``selection.py``).

The source is only ever read. Output files are copies of the source photos (reflinks where
the file system shares blocks between files: instant and no extra disk, yet independent
files), and lossless PNGs for photos TensorFlow cannot read as they are (``images.py``). Hard
links (``link=True``) save disk everywhere but make each dataset file the very same file as
its photo: editing or ``chmod``-ing either changes both. The manifest records how each file
was made. The dataset is built in a hidden folder and moved into place when complete, so a
full disk or an interrupted run leaves no partial dataset, and what a killed run left is
cleared by the next one (see ``destination.py``).

Each file keeps its photo's name where it can. A name that is not valid UTF-8 (or holds a
control character) is stored under a valid one (``caf%E9.jpg``, ``layouts.portable_name``)
and one too long for the destination's file system is cut and tagged (``photo_files.py``):
the same photo gets the same name every time. The manifest records each file's source name,
escaped where it is not UTF-8 (``caf\\xe9.jpg``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.defaults import DATA_ROOT, DEFAULT_SEED
from pipeline.data.destination import building, check_destination, clear_leftovers
from pipeline.data.images import STORED_PNG, write_converted
from pipeline.data.layouts import portable_name, shown
from pipeline.data.manifest import (
    MANIFEST_NAME,
    SPLITS,
    build_manifest,
    file_entry,
    file_sha256,
    write_manifest,
)
from pipeline.data.naming import default_dataset_name
from pipeline.data.photo_files import copy_file, name_max_of, try_hard_link, unique_name
from pipeline.data.progress import StderrProgress
from pipeline.data.selection import Pick, select
from pipeline.data.sources import scan_photos
from pipeline.data.splits import (
    CLASSIC_LAYOUTS,
    SplitRule,
    given_counts,
    parse_fractions,
    split_rule,
)
from pipeline.errors import PipelineError
from pipeline.system import interrupts
from pipeline.system.paths import check_name, check_writable_folder, child_path

__all__ = ["PrepareConfig", "PrepareResult", "StderrProgress", "file_sha256", "prepare_dataset"]


@dataclass
class PrepareConfig:
    """Where the photos are, where the dataset goes, and how each class is split.

    ``split`` (fractions, ``"0.8,0.1,0.1"``) or ``train``/``validation``/``test`` (photos per
    class; those left out keep the book's 1000/500/500); neither: the layout's default, the
    book's counts for Kaggle's cats and dogs, else ``defaults.DEFAULT_FRACTIONS``.
    """

    source: Path
    data_root: Path = DATA_ROOT
    name: str | None = None  # None: cats_and_dogs_small for Kaggle's photos, else the folder's
    split: str | tuple[float, float, float] | None = None  # fractions of each class
    train: int | None = None  # photos per class (instead of ``split``)
    validation: int | None = None
    test: int | None = None
    shuffle: bool = False  # counts: False, first photos in id order (the book's); True: random
    seed: int = DEFAULT_SEED  # of the fractions' draw, and of shuffle
    labels: Path | None = None  # a CSV naming each photo's label, for a flat folder
    labels_columns: str | None = None  # "FILE,LABEL": its columns (None: from the header)
    force: bool = False  # replace an existing dataset of the same name (only one we wrote)
    # Hard-link unchanged photos instead of copying them. A hard link IS the photo: the
    # dataset file and the source file share bytes, permissions and owner, so editing or
    # chmod-ing either changes the other. Saves disk; off by default.
    link: bool = False

    @property
    def dataset_dir(self) -> Path:
        """``data_root/name``, once ``name`` is given and proven a plain folder name."""
        return child_path(self.data_root, self.name, "name")

    def sizes(self) -> dict[str, int] | None:
        """The whole counts per class given (those left out: the book's), or None."""
        return given_counts(self.train, self.validation, self.test)


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
    split: str = ""  # how each class was split, in words (and whether by default)
    named: str = ""  # where the dataset's name came from, when none was given
    drawn: tuple[str, ...] = ()  # splits a pre-split source lacked, drawn from its train/
    labels: Path | None = None  # the CSV the labels came from
    # A stop (Ctrl-C, SIGTERM) that came once the dataset was in place: told in ``notes``, not
    # raised, as the dataset is complete; a caller with more work to do (``run``) raises it.
    stop: KeyboardInterrupt | None = field(default=None, repr=False)

    def summary(self, max_skipped: int = 20) -> str:
        """A few lines for the terminal: the split, counts per split and class, what was
        skipped."""
        total = sum(sum(per_class.values()) for per_class in self.counts.values())
        lines = [f"prepared {shown(self.dataset_dir)} ({self.layout} layout): "
                 f"{len(self.classes)} classes, {total:,} photos"]
        if self.named:
            lines.append(f"  name: {shown(self.dataset_dir.name)} ({self.named})")
        if self.labels is not None:
            lines.append(f"  labels: {shown(self.labels)}")
        if self.split:
            lines.append(f"  split: {self.split}")
        for split, per_class in self.counts.items():
            counts = ", ".join(f"{label} {count}" for label, count in per_class.items())
            drawn = " (drawn from train/)" if split in self.drawn else ""
            lines.append(f"  {split} {sum(per_class.values()):,}{drawn}: {counts}")
        made = [f"{self.copied} copied"]
        if self.reflinked:
            made.append(f"{self.reflinked} reflinked")
        if self.linked:
            made.append(f"{self.linked} hard-linked")
        lines.append(f"  {', '.join(made)}, {self.converted} converted (lossless PNG; a JPEG "
                     f"turned upright stays JPEG); {self.checked} images checked")
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


def prepare_dataset(config: PrepareConfig, progress: bool = True) -> PrepareResult:
    """Check, split and write the photos of ``config.source`` into ``data_root/name``.

    Everything that can be refused is refused before the destination is touched: bad
    options, an unknown layout, too few good photos, a destination that is not ours, a
    ``data_root`` that is a file or read-only. A full disk while writing removes what was
    written and leaves an older dataset of the same name as it was.
    """
    counts = config.sizes()
    if config.split is not None:
        parse_fractions(config.split)
    if config.name is not None:
        check_name(config.name, "name")
    check_writable_folder(config.data_root, "data_root")
    scan = scan_photos(config.source, config.labels, config.labels_columns)
    rule = split_rule(config.split, counts, config.shuffle, scan.layout)
    dataset_dir = child_path(config.data_root, config.name or default_dataset_name(scan), "name")
    source = scan.source.resolve()
    _refuse_overlap(source, dataset_dir.resolve())
    notes = clear_leftovers(dataset_dir.parent)  # first: a dataset put back counts as there
    replacing = check_destination(dataset_dir, config.force)

    chosen = select(scan, rule, config.seed, progress)

    skipped = [*scan.ignored, *chosen.bad]
    classes = list(scan.classes)
    drawn_at_random = rule.fractions is not None or rule.shuffle
    written = b""  # the new manifest's bytes: in ``dataset_dir`` they prove it is in place
    try:
        with building(dataset_dir, config.force, notes=notes) as partial:
            entries, stats = _write_picks(chosen.picks, scan.source, partial, config.link,
                                          progress)
            manifest = build_manifest(
                source=shown(source),
                layout=scan.layout,
                selection=_selection_name(scan.given is not None, rule),
                seed=config.seed if drawn_at_random else None,
                requested=rule.counts,
                fractions=rule.fractions,
                classes=classes,
                splits=entries,
                skipped=[(_relative_name(path, scan.source), reason) for path, reason in skipped],
                link=config.link,
            )
            write_manifest(partial, manifest)
            result = PrepareResult(
                dataset_dir=dataset_dir,
                manifest_path=dataset_dir / MANIFEST_NAME,
                layout=scan.layout,
                classes=classes,
                counts=manifest["counts"],
                skipped=skipped,
                checked=chosen.checked,
                replaced=replacing,
                notes=notes,
                split=_split_words(scan.given, chosen.drawn, rule, scan.layout),
                named="" if config.name else _why_named(scan.layout),
                drawn=chosen.drawn,
                labels=scan.labels,
                **stats,
            )
            written = (partial / MANIFEST_NAME).read_bytes()  # last: ``result`` is made
    except KeyboardInterrupt as stop:
        if not _holds(dataset_dir / MANIFEST_NAME, written):
            raise
        # The stop came after the new dataset was in place (between placing it and returning
        # here): there is nothing left to undo, so it is the outcome, told, not a failure.
        interrupts.handled()
        notes.append(f"stopped ({interrupts.describe(stop)}) once the new dataset was in place; "
                     "it is complete")
        result.stop = stop
    return result


def _holds(path: Path, content: bytes) -> bool:
    """Whether ``path`` holds exactly ``content`` (and ``content`` is not empty)."""
    try:
        return bool(content) and path.read_bytes() == content
    except OSError:
        return False


def _selection_name(given: bool, rule: SplitRule) -> str:
    """The manifest's ``selection``: given (the source's splits), fractions, shuffle, first."""
    if given:
        return "given"
    if rule.fractions is not None:
        return "fractions"
    return "shuffle" if rule.shuffle else "first"


def _split_words(given: dict | None, drawn: tuple[str, ...], rule: SplitRule,
                 layout: str) -> str:
    if given is None:
        return rule.describe(layout)
    text = f"as the source's folders give it ({', '.join(given)})"
    if drawn and rule.fractions:
        shares = {split: rule.fractions[split] for split in ("train", *drawn)}
        total = sum(shares.values())
        parts = ", ".join(f"{split} {shares[split] / total:.0%}" for split in drawn)
        text += f"; {parts} of each class of train/ drawn at random (seeded)"
    return text


def _why_named(layout: str) -> str:
    if layout in CLASSIC_LAYOUTS:
        return "the book's name for Kaggle's cats and dogs"
    return "the source folder's name"


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


def _write_picks(
    picks: list[Pick], source_root: Path, dataset_dir: Path, link: bool, progress: bool
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
            check = pick.check
            src, converted = check.path, check.needs_conversion
            wanted = portable_name(src.name)
            if check.suffix:  # converted, or JPEG/PNG bytes named as another format
                wanted = os.path.splitext(wanted)[0] + check.suffix
            dst = folder / unique_name(wanted, used_names[folder], name_max)
            if converted:
                write_converted(src, dst, check.stored_as or STORED_PNG)
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
