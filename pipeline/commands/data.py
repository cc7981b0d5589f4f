"""The ``data`` commands: prepare, download or generate datasets, check them, preview augmentation.

``pipeline.cli`` adds the group to its main group; the data code is imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import click
import cloup

from pipeline.commands.base import CONTEXT, Commands, in_users_words
from pipeline.commands.choices import BASE_NAMES, Names
from pipeline.commands.options import (
    PathType,
    add_options,
    augmentation_options,
    features_dir_option,
    field_defaults,
    option,
    output_option,
)
from pipeline.data.defaults import (
    CLASSIC_COUNTS,
    DATA_ROOT,
    DATASET_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_FRACTIONS,
    DEFAULT_MODELS_DIR,
    DEFAULT_SEED,
)
from pipeline.data.prepare import PrepareConfig
from pipeline.data.synth import SHAPES

PREPARE = field_defaults(PrepareConfig)


def _fractions() -> str:
    return ",".join(f"{f:g}" for f in DEFAULT_FRACTIONS)


def _counts() -> str:
    return "/".join(map(str, CLASSIC_COUNTS))


@cloup.group(cls=Commands, context_settings=CONTEXT, examples=(
    "python cli.py data prepare --source ~/Downloads/train",
    "python cli.py data check data/cats_and_dogs_small",
))
def data() -> None:
    """Prepare, download, generate or check datasets, and preview augmentation."""


@data.command("prepare", examples=(
    "python cli.py data prepare --source ~/photos/flowers   # a folder per class: 0.8,0.1,0.1",
    "python cli.py data prepare --source ~/Downloads/train  # Kaggle's cats, dogs: 1000/500/500",
    "python cli.py data prepare --source ~/photos --split 0.7,0.15,0.15 --name mine --link",
    "python cli.py data prepare --source ~/kaggle/images --labels ~/kaggle/labels.csv",
))
@add_options(
    option("--source", type=PathType, required=True,
           help="Folder of photos: one sub-folder per class; train/, val/, test/ of those "
                "(used as given); Kaggle flat (cat.1.jpg) or PetImages (Cat/, Dog/); or a "
                "flat folder with --labels."),
    option("--labels", type=PathType, default=PREPARE["labels"],
           help="CSV naming each photo's label, for a flat folder (filename,label; header "
                "names such as id,label or image,class are found). Default: the folder's "
                "only CSV, when its file names give no classes."),
    option("--labels-columns", default=PREPARE["labels_columns"], metavar="FILE,LABEL",
           help="The CSV's columns holding the file names and the labels (default: from "
                "its header)."),
    section="Data",
)
@add_options(
    option("--split", default=PREPARE["split"], metavar="TRAIN,VAL,TEST",
           help="Fractions of each class, e.g. 0.8,0.1,0.1: stratified, seeded, every photo "
                f"used. Default: {_fractions()} for every layout but Kaggle's cats and dogs "
                f"(flat or PetImages), which keep the book's {_counts()} photos per class."),
    option("--train", type=int, default=PREPARE["train"],
           help="Photos per class, instead of --split (those not given: the book's "
                f"{_counts()})."),
    option("--validation", type=int, default=PREPARE["validation"], help="Photos per class."),
    option("--test", type=int, default=PREPARE["test"], help="Photos per class."),
    option("--shuffle", is_flag=True, default=PREPARE["shuffle"], show_default=False,
           help="With whole counts: draw photos at random (default: in file order, the "
                "classic split). Fractions are always drawn at random."),
    option("--seed", default=PREPARE["seed"], help="Seed of the draw."),
    section="Split",
)
@add_options(
    option("--name", default=PREPARE["name"],
           help="Dataset name: written to <data-root>/<name>/ (default: the source folder's "
                f"name; {DATASET_NAME} for Kaggle's cats and dogs)."),
    option("--data-root", type=PathType, default=PREPARE["data_root"],
           help="Where datasets are made."),
    option("--force", is_flag=True, default=PREPARE["force"], show_default=False,
           help="Replace an existing dataset of that name."),
    option("--link/--copy", default=PREPARE["link"],
           help="Hard-link photos instead of copying them (a link IS the photo: editing either "
                "changes both). The source is never written."),
    section="Output",
)
def data_prepare(**config) -> None:
    """Make a train/validation/test split from a folder of photos (the source is never changed).

    No PNG or WebP is re-encoded as a JPEG: a photo TensorFlow reads as it is (a JPEG, an
    8-bit PNG without transparency) is copied byte for byte; transparent, palette or 16-bit
    PNGs, CMYK JPEGs, WebP, GIF, BMP and TIFF files become lossless PNGs. The summary says
    which split was used, and why.
    """
    from pipeline.data.prepare import PrepareConfig, prepare_dataset

    click.echo(prepare_dataset(PrepareConfig(**config)).summary())


@data.command("download", examples=(
    "python cli.py data download           # about 800 MB, extracted under data/",
))
@add_options(option("--data-root", type=PathType, default=DATA_ROOT,
                    help="Where the archive is extracted."),
             option("--force", is_flag=True, help="Download and extract again."),
             section="Output")
def data_download(data_root, force) -> None:
    """Fetch Microsoft's PetImages archive (about 800 MB) and extract it under data/."""
    from pipeline.data.download import download_petimages

    result = download_petimages(data_root, force=force)
    click.echo(result.summary())
    click.echo(in_users_words(f"next: python cli.py data prepare --source {result.path}"))


@data.command("synth", examples=(
    "python cli.py data synth                          # data/synthetic, 40/20/20 per class",
    "python cli.py data synth --sizes 8 4 4 --image-size 48 --name tiny",
    "python cli.py data synth --classes 5 --name five  # circles, stripes, rectangles, ...",
))
@add_options(
    option("--classes", type=int, default=2,
           help=f"Number of classes, 2 to {len(SHAPES)}: two are cat and dog (circles and "
                "stripes); more are named by their shapes."),
    option("--sizes", nargs=3, type=int, default=(40, 20, 20),
           help="Images per class in train, validation, test."),
    option("--image-size", default=64, help="Side of the images, pixels."),
    option("--seed", default=0, help="Seed of the drawings."),
    section="Data",
)
@add_options(
    option("--name", default="synthetic", help="Dataset name: written to <data-root>/<name>/."),
    option("--data-root", type=PathType, default=DATA_ROOT, help="Where datasets are made."),
    option("--force", is_flag=True, help="Replace an existing dataset of that name."),
    section="Output",
)
def data_synth(name, data_root, classes, **options) -> None:
    """Write a small generated dataset (circles vs stripes, ...) for smoke runs and tests."""
    from pipeline.data.synth import class_names, write_synthetic_dataset
    from pipeline.system.paths import child_path

    names = class_names(classes)
    folder = write_synthetic_dataset(child_path(data_root, name, "name"), classes=names,
                                     **options)
    click.echo(f"synthetic dataset written to {folder}: {len(names)} classes "
               f"({', '.join(names)})")


@data.command("check", examples=(
    f"python cli.py data check {DEFAULT_DATA_DIR}",
    "python cli.py data check data/mine --threshold 0.9 --base vgg16",
))
@cloup.argument("data_dir", metavar="DATASET", type=PathType,
                help="A prepared dataset folder (train/, validation/, test/).")
@add_options(
    option("--base", default="efficientnet_lite0", type=Names(BASE_NAMES),
           help="Conv base whose pooled features compare the photos (cached, as extract's)."),
    option("--weights", default="auto", help="Its weights, as for `extract`."),
    option("--image-size", type=int, default=None, help="Default: the base's own size."),
    section="Model",
)
@add_options(
    option("--threshold", default=0.95,
           help="Cosine similarity above which two photos are near duplicates."),
    option("--neighbours", default=10, help="Neighbours that vote on each photo's label."),
    section="Check",
)
@add_options(option("--models-dir", type=PathType, default=DEFAULT_MODELS_DIR,
                    help="The feature cache is <models-dir>/features."), features_dir_option(),
             section="Feature cache")
@output_option("Folder for the contact sheets and check.json (default: "
               "<models-dir>/data-check-<dataset>).", "out_dir")
def data_check(**config) -> None:
    """Duplicates, leaks between splits and likely mislabelled photos of DATASET.

    Exact duplicates (same bytes), near duplicates (conv-base features almost equal) within
    a split and across train/validation/test (a leak: the held-out score measures memory),
    and photos whose nearest neighbours mostly carry another label; a contact sheet each.
    """
    from pipeline.workflows.data_check import DataCheckConfig, check_dataset

    click.echo(check_dataset(DataCheckConfig(**config)).summary())


@data.command("augment-preview", examples=(
    "python cli.py data augment-preview photo.jpg",
    "python cli.py data augment-preview photo.jpg --rotation 10 --zoom 0.1 --count 12 -o a.png",
))
@cloup.argument("image", type=PathType, help="A photo.")
@output_option("PNG to write (default: models/augmentation-<image name>.png).")
@add_options(option("--count", default=8, help="Augmented versions to show."),
             option("--image-size", default=150, help="Side of the images, pixels."),
             option("--seed", default=DEFAULT_SEED, help="Seed of the draws."),
             section="Preview")
@augmentation_options
def data_augment_preview(image, output, count, image_size, seed, augmentation) -> None:
    """Write a grid of augmented versions of IMAGE, to see what training shows the model."""
    from pipeline.plots.augmentation import plot_augmentations

    output = output or DEFAULT_MODELS_DIR / f"augmentation-{Path(image).stem}.png"
    click.echo(f"wrote {plot_augmentations(image, output, augmentation, count, image_size, seed)}")
