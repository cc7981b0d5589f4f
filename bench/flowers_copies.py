"""Three copies of the Oxford 17 flowers, laid out as users bring their photos.

From ``../shared/datasets/oxford-flowers-17`` (17 species, 80 photos each, one folder per
species) into OUT, a folder outside the repository (these photos are never committed):

* ``flowers-uneven/``: the same folders, half the photos of five species dropped (every
  second one, in file order), so classes hold 40 or 80 photos;
* ``flowers-presplit/``: ``train/``, ``val/``, ``test/`` of species folders, 60/10/10 of each
  species drawn with a fixed seed, as Kaggle and Roboflow exports are laid out;
* ``flowers-csv/``: every photo in one flat folder with ``labels.csv`` (``filename,label``)
  beside them, as competitions ship them.

The photos are hard links where OUT is on the same file system (no extra disk), else copies;
the source is only read. With ``--prepare DATA_ROOT`` each copy and the original are then
prepared there (``python cli.py data prepare``, its default split) and the summaries printed.

    .venv/bin/python bench/flowers_copies.py /tmp/flowers-copies [--prepare /tmp/flowers-data]

Exit status 2, saying why, when the flowers folder is absent (``--flowers`` or
``$FLOWERS_DATASET``) or OUT lies inside the repository.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

from common import CANNOT_RUN

REPO = Path(__file__).resolve().parents[1]
FLOWERS_ENV = "FLOWERS_DATASET"
DEFAULT_FLOWERS = REPO.parent / "shared" / "datasets" / "oxford-flowers-17"
SEED = 1337
UNEVEN_SPECIES = 5  # species that lose half their photos
PRE_SPLIT = {"train": 60, "val": 10, "test": 10}  # photos per species (of 80)
MARKER = ".flowers-copies"  # in OUT: the copies this script made, which --force may replace
COPIES = ("flowers-uneven", "flowers-presplit", "flowers-csv")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the copies (outside the repository)")
    parser.add_argument("--flowers", type=Path,
                        default=Path(os.environ.get(FLOWERS_ENV, DEFAULT_FLOWERS)),
                        help=f"the flowers folder (default: ${FLOWERS_ENV}, else "
                             f"{DEFAULT_FLOWERS})")
    parser.add_argument("--prepare", type=Path, metavar="DATA_ROOT",
                        help="then prepare the original and each copy into DATA_ROOT")
    parser.add_argument("--force", action="store_true",
                        help="replace copies this script made before")
    return parser.parse_args(argv)


def species_photos(flowers: Path) -> dict[str, list[Path]]:
    """Species -> its photos in file order."""
    return {folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() == ".jpg")
            for folder in sorted(flowers.iterdir()) if folder.is_dir()}


def place(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src``, or a copy where linking is not possible."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def fresh(folder: Path, force: bool) -> Path:
    """An empty ``folder`` to fill; one this script made is replaced only with ``force``.

    The marker lies beside the copies, not in them: inside, it would be one more file that
    ``data prepare`` lists as passed over.
    """
    marker = folder.parent / MARKER
    ours = marker.is_file() and folder.name in marker.read_text().split()
    if folder.exists():
        if not (force and ours):
            why = "rerun with --force" if ours else "not made by this script"
            raise SystemExit(f"cannot run: {folder} exists ({why}); exit status {CANNOT_RUN}")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if not ours:
        with open(marker, "a", encoding="utf-8") as handle:
            handle.write(f"{folder.name}\n")
    return folder


def uneven_copy(photos: dict[str, list[Path]], out: Path) -> list[str]:
    """Half the photos of ``UNEVEN_SPECIES`` species (drawn with ``SEED``) dropped."""
    halved = sorted(random.Random(SEED).sample(sorted(photos), UNEVEN_SPECIES))
    for species, files in photos.items():
        kept = files[::2] if species in halved else files
        for path in kept:
            place(path, out / species / path.name)
    return halved


def pre_split_copy(photos: dict[str, list[Path]], out: Path) -> None:
    for species, files in photos.items():
        order = list(files)
        random.Random(f"{SEED}:{species}").shuffle(order)
        start = 0
        for split, count in PRE_SPLIT.items():
            for path in order[start:start + count]:
                place(path, out / split / species / path.name)
            start += count


def csv_copy(photos: dict[str, list[Path]], out: Path) -> int:
    rows = [(path.name, species) for species, files in photos.items() for path in files]
    if len({name for name, _ in rows}) != len(rows):
        raise SystemExit("cannot run: two species share a file name; a flat copy needs unique "
                         f"names; exit status {CANNOT_RUN}")
    for files in photos.values():
        for path in files:
            place(path, out / path.name)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("filename", "label"))
        writer.writerows(rows)
    return len(rows)


def prepare(source: Path, data_root: Path) -> int:
    print(f"\n$ python cli.py data prepare --source {source} --data-root {data_root} --force",
          flush=True)
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "data", "prepare", "--source",
                           str(source), "--data-root", str(data_root), "--force"], check=False)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flowers, out = args.flowers.expanduser(), args.out.expanduser().absolute()
    if not flowers.is_dir():
        print(f"cannot run: the Oxford 17 flowers folder {flowers} not found (give --flowers "
              f"or set {FLOWERS_ENV}); exit status {CANNOT_RUN}", file=sys.stderr)
        return CANNOT_RUN
    if out == REPO or REPO in out.parents:
        print(f"cannot run: {out} lies inside the repository; the flowers photos are never "
              f"copied into it: choose a folder outside; exit status {CANNOT_RUN}",
              file=sys.stderr)
        return CANNOT_RUN
    photos = species_photos(flowers)
    try:
        folders = [fresh(out / name, args.force) for name in COPIES]
    except SystemExit as stop:
        print(stop, file=sys.stderr)
        return CANNOT_RUN
    halved = uneven_copy(photos, folders[0])
    pre_split_copy(photos, folders[1])
    listed = csv_copy(photos, folders[2])
    print(f"{len(photos)} species, {sum(map(len, photos.values()))} photos from {flowers}")
    print(f"  {folders[0]}: half the photos of {', '.join(halved)} dropped")
    print(f"  {folders[1]}: {'/'.join(map(str, PRE_SPLIT.values()))} per species in "
          f"{', '.join(PRE_SPLIT)}")
    print(f"  {folders[2]}: {listed} photos flat, labels.csv beside them")
    if args.prepare is None:
        return 0
    status = 0
    for source in (flowers, *folders):
        status = max(status, prepare(source, args.prepare.expanduser()))
    return status


if __name__ == "__main__":
    sys.exit(main())
