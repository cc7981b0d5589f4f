"""Which `--class-weight` default: none against balanced, on a skewed copy of the Oxford 17 flowers.

The skewed copy (in OUT, outside the repository; hard links, the source is only read): the 17
species sorted by name, ``MINORITY_SPECIES`` of them drawn with ``SEED`` keep a seeded draw of
15 to 20 of their 80 photos (the count itself drawn per species, seeded), the others keep all
80. It is prepared with ``--split 0.6,0.2,0.2``, so validation and test are skewed like train.
Up to ``HELD_OUT`` of each minority species' photos left out of the copy form a held-out set
(photos no run trained or validated on, all of minority species): its accuracy says how well
the small classes are recognised, on more photos than their few validation images.

Then ``extract --base efficientnet_lite0`` (features computed once, in one features folder
every run shares) with ``--class-weight none`` and ``balanced`` over ``--seeds``; each run is
evaluated on the validation split (accuracy, balanced accuracy, macro F1: ``evaluate``) and
predicted on the held-out photos. The test split is never read. The choice is made by
validation balanced accuracy; where the two are tied within noise (the spread over seeds, or
one photo of the smallest validation class), the simpler ``none``, unless balanced helps the
minority classes clearly on the held-out photos.

    .venv/bin/python bench/class_weight_report.py /tmp/class-weight [--seeds 1337,1338]

Exit status 2, saying why, when the flowers folder is absent or OUT lies inside the
repository, or a command it runs fails.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from common import CANNOT_RUN, run_stamp
from flowers_copies import DEFAULT_FLOWERS, FLOWERS_ENV, place, species_photos

REPO = Path(__file__).resolve().parents[1]
SEED = 1337
MINORITY_SPECIES = 8  # of 17: the species cut down to a few photos
MINORITY_PHOTOS = (15, 20)  # photos a minority species keeps, drawn per species in this range
HELD_OUT = 20  # left-out photos of each minority species predicted after training
SPLIT = "0.6,0.2,0.2"
BASE = "efficientnet_lite0"
OPTIONS = ("none", "balanced")
MARKER = ".class-weight-report"  # in OUT: made by this script, replaced on each run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="scratch folder (outside the repository)")
    parser.add_argument("--flowers", type=Path,
                        default=Path(os.environ.get(FLOWERS_ENV, DEFAULT_FLOWERS)),
                        help=f"the flowers folder (default: ${FLOWERS_ENV}, else "
                             f"{DEFAULT_FLOWERS})")
    parser.add_argument("--seeds", default="1337,1338", help="training seeds, comma-separated")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of each head (default: extract's)")
    return parser.parse_args(argv)


def skewed_copy(photos: dict[str, list[Path]], out: Path) -> tuple[dict[str, int], Path]:
    """Fill ``out/flowers-skewed`` (the skewed species folders) and ``out/held-out``; returns
    the photos each species keeps and the held-out folder."""
    minority = set(random.Random(SEED).sample(sorted(photos), MINORITY_SPECIES))
    kept_counts = {}
    for species, files in sorted(photos.items()):
        draw = random.Random(f"{SEED}:{species}")
        kept = list(files)
        left: list[Path] = []
        if species in minority:
            order = draw.sample(files, len(files))
            count = draw.randint(*MINORITY_PHOTOS)
            kept, left = sorted(order[:count]), sorted(order[count:count + HELD_OUT])
        for path in kept:
            place(path, out / "flowers-skewed" / species / path.name)
        for path in left:
            place(path, out / "held-out" / species / path.name)
        kept_counts[species] = len(kept)
    return kept_counts, out / "held-out"


def cli(*args: str, log: Path) -> str:
    """Run ``python cli.py ARGS``, its output kept in ``log``; its stdout, or exit on failure."""
    print("$ python cli.py " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True,
                          text=True, check=False)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise SystemExit(f"cannot run: exit status {done.returncode} ({log}):\n  "
                         + "\n  ".join(tail))
    return done.stdout


def held_out_accuracy(predictions_csv: str, held_out: Path) -> float:
    """Share of the held-out photos predicted as the species whose folder holds them."""
    rows = list(csv.DictReader(io.StringIO(predictions_csv)))
    right = sum(Path(row["path"]).parent.name == row["class"] for row in rows)
    expected = sum(1 for _ in held_out.glob("*/*"))
    if len(rows) != expected:
        raise SystemExit(f"cannot run: {len(rows)} predictions for {expected} held-out photos")
    return right / len(rows)


def measure(data: Path, out: Path, held_out: Path, option: str, seed: int, stamp: str,
            epochs: int | None) -> dict[str, float]:
    """Train one head, evaluate it on validation, predict the held-out photos."""
    name = f"cw-{option}-s{seed}-{stamp}"
    logs = out / "logs"
    cli("extract", "--data", str(data), "--base", BASE, "--class-weight", option,
        "--seed", str(seed), "--models-dir", str(out / "models"),
        "--features-dir", str(out / "features"), "--run-name", name,
        *(("--epochs", str(epochs)) if epochs else ()), log=logs / f"{name}-extract.log")
    run = out / "models" / name
    cli("evaluate", str(run), "--split", "validation", log=logs / f"{name}-evaluate.log")
    metrics = json.loads((run / "evaluation-validation" / "metrics.json").read_text())
    predictions = cli("predict", str(run), str(held_out), "--format", "csv",
                      log=logs / f"{name}-predict.log")
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["training"]["class_weight"] == option, "not recorded as asked"
    return {"accuracy": metrics["accuracy"], "balanced": metrics["balanced_accuracy"],
            "macro_f1": metrics["macro_f1"], "held_out": held_out_accuracy(predictions, held_out)}


def spread(values: list[float]) -> float:
    return max(values) - min(values)


def choose(results: dict[str, list[dict[str, float]]], granularity: float) -> tuple[str, str]:
    """The default and why, by validation balanced accuracy (see the module's docstring)."""
    mean = {o: statistics.mean(r["balanced"] for r in results[o]) for o in OPTIONS}
    noise = max(granularity, *(spread([r["balanced"] for r in results[o]]) for o in OPTIONS))
    held = {o: [r["held_out"] for r in results[o]] for o in OPTIONS}
    gap = mean["balanced"] - mean["none"]
    if abs(gap) > noise:
        winner = "balanced" if gap > 0 else "none"
        return winner, (f"validation balanced accuracy {mean[winner]:.1%} against "
                        f"{min(mean.values()):.1%}, a gap of {abs(gap):.1%} beyond the noise "
                        f"({noise:.1%})")
    held_gap = statistics.mean(held["balanced"]) - statistics.mean(held["none"])
    clearly = held_gap > max(0.02, spread(held["balanced"]), spread(held["none"]))
    why = (f"validation balanced accuracy tied within noise ({mean['none']:.1%} none, "
           f"{mean['balanced']:.1%} balanced, noise {noise:.1%}); held-out minority photos: "
           f"{held_gap:+.1%} with balanced")
    if clearly:
        return "balanced", why + ", a clear help to the small classes"
    return "none", why + ", no clear help: the simpler none"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flowers, out = args.flowers.expanduser(), args.out.expanduser().absolute()
    if not flowers.is_dir():
        print(f"cannot run: the Oxford 17 flowers folder {flowers} not found (give --flowers "
              f"or set {FLOWERS_ENV}); exit status {CANNOT_RUN}", file=sys.stderr)
        return CANNOT_RUN
    if out == REPO or REPO in out.parents:
        print(f"cannot run: {out} lies inside the repository; choose a folder outside; "
              f"exit status {CANNOT_RUN}", file=sys.stderr)
        return CANNOT_RUN
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        print(f"cannot run: {out} holds files this script did not make; choose an empty "
              f"folder; exit status {CANNOT_RUN}", file=sys.stderr)
        return CANNOT_RUN
    seeds = [int(seed) for seed in args.seeds.split(",")]
    for made in ("flowers-skewed", "held-out", "data"):  # the copy is remade; features stay
        shutil.rmtree(out / made, ignore_errors=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    kept, held_out = skewed_copy(species_photos(flowers), out)
    print(f"skewed copy: {sum(kept.values())} photos, "
          + ", ".join(f"{name} {count}" for name, count in kept.items()))
    try:
        cli("data", "prepare", "--source", str(out / "flowers-skewed"), "--split", SPLIT,
            "--data-root", str(out / "data"), "--link", log=out / "logs" / "prepare.log")
        data = out / "data" / "flowers-skewed"
        manifest = json.loads((data / "manifest.json").read_text())
        validation = manifest["counts"]["validation"]
        print(f"validation: {sum(validation.values())} photos, {min(validation.values())} to "
              f"{max(validation.values())} per species")
        stamp = run_stamp()
        results: dict[str, list[dict[str, float]]] = {option: [] for option in OPTIONS}
        for seed in seeds:
            for option in OPTIONS:
                results[option].append(measure(data, out, held_out, option, seed, stamp,
                                               args.epochs))
    except SystemExit as stop:
        print(stop, file=sys.stderr)
        return CANNOT_RUN
    print("\n| class weight | seed | val accuracy | val balanced accuracy | val macro F1 | "
          "held-out minority accuracy |\n|---|---|---|---|---|---|")
    for option in OPTIONS:
        for seed, r in zip(seeds, results[option], strict=True):
            print(f"| {option} | {seed} | {r['accuracy']:.1%} | {r['balanced']:.1%} | "
                  f"{r['macro_f1']:.3f} | {r['held_out']:.1%} |")
    for option in OPTIONS:
        means = {key: statistics.mean(r[key] for r in results[option])
                 for key in ("accuracy", "balanced", "macro_f1", "held_out")}
        print(f"| {option} | mean | {means['accuracy']:.1%} | {means['balanced']:.1%} | "
              f"{means['macro_f1']:.3f} | {means['held_out']:.1%} |")
    granularity = 1 / (len(validation) * min(validation.values()))
    default, why = choose(results, granularity)
    print(f"\ndefault --class-weight {default}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
