"""The command groups around the workflows: ``data ...``, ``visualize ...`` and ``summary``.

Prepare, download or generate datasets and preview augmentation; look inside a convnet;
count what it costs. ``cli.py`` adds them to its main group.
"""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.options import (
    CONTEXT,
    Commands,
    PathType,
    RegistryChoice,
    add_options,
    augmentation_options,
    echo_paths,
    model_choice_option,
    option,
    output_option,
)

# -- data -----------------------------------------------------------------------------------------


@click.group(cls=Commands, context_settings=CONTEXT)
def data() -> None:
    """Prepare, download or generate datasets, and preview augmentation."""


@data.command("prepare")
@add_options(
    option("--source", type=PathType, required=True,
           help="Folder of photos: Kaggle flat (cat.1.jpg), PetImages (Cat/, Dog/) or one "
                "sub-folder per class."),
    option("--name", default="cats_and_dogs_small",
           help="Dataset name: written to <data-root>/<name>/."),
    option("--data-root", type=PathType, default=Path("data")),
    option("--train", default=1000, help="Images per class."),
    option("--validation", default=500, help="Images per class."),
    option("--test", default=500, help="Images per class."),
    option("--shuffle", is_flag=True,
           help="Draw images at random (default: in file order, the classic split)."),
    option("--seed", default=1337, help="Seed for --shuffle."),
    option("--force", is_flag=True, help="Replace an existing dataset of that name."),
    option("--link/--copy", default=False,
           help="Hard-link photos instead of copying them (a link IS the photo: editing either "
                "changes both). The source is never written."),
)
def data_prepare(**config) -> None:
    """Make a train/validation/test split from a folder of photos (the source is never changed)."""
    from pipeline.data.prepare import PrepareConfig, prepare_dataset

    click.echo(prepare_dataset(PrepareConfig(**config)).summary())


@data.command("download")
@add_options(option("--data-root", type=PathType, default=Path("data")),
             option("--force", is_flag=True, help="Download and extract again."))
def data_download(data_root, force) -> None:
    """Fetch Microsoft's PetImages archive (about 800 MB) and extract it under data/."""
    from pipeline.data.download import download_petimages

    result = download_petimages(data_root, force=force)
    click.echo(result.summary())
    click.echo(f"next: python cli.py data prepare --source {result.path}")


@data.command("synth")
@add_options(
    option("--name", default="synthetic"),
    option("--data-root", type=PathType, default=Path("data")),
    option("--sizes", nargs=3, type=int, default=(40, 20, 20),
           help="Images per class in train, validation, test."),
    option("--image-size", default=64, help="Side of the images, pixels."),
    option("--seed", default=0),
    option("--force", is_flag=True, help="Replace an existing dataset of that name."),
)
def data_synth(name, data_root, **options) -> None:
    """Write a small generated two-class dataset (circles vs stripes) for smoke runs and tests."""
    from pipeline.data.synth import write_synthetic_dataset

    folder = write_synthetic_dataset(data_root / name, **options)
    click.echo(f"synthetic dataset written to {folder}")


@data.command("check")
@click.argument("data_dir", metavar="DATASET", type=PathType)
@add_options(
    option("--base", default="efficientnet_lite0",
           type=RegistryChoice("pipeline.models.bases:BASES"),
           help="Conv base whose pooled features compare the photos (cached, as extract's)."),
    option("--weights", default="auto", help="Its weights, as for `extract`."),
    option("--image-size", type=int, default=None, help="Default: the base's own size."),
    option("--models-dir", type=PathType, default=Path("models"),
           help="The feature cache is <models-dir>/features."),
    option("--threshold", default=0.95,
           help="Cosine similarity above which two photos are near duplicates."),
    option("--neighbours", default=10, help="Neighbours that vote on each photo's label."),
)
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


@data.command("augment-preview")
@click.argument("image", type=PathType)
@output_option("PNG to write (default: models/augmentation-<image name>.png).")
@add_options(option("--count", default=8, help="Augmented versions to show."),
             option("--image-size", default=150), option("--seed", default=1337))
@augmentation_options
def data_augment_preview(image, output, count, image_size, seed, augmentation) -> None:
    """Write a grid of augmented versions of IMAGE, to see what training shows the model."""
    from pipeline.plots.augmentation import plot_augmentations

    output = output or Path("models") / f"augmentation-{Path(image).stem}.png"
    click.echo(f"wrote {plot_augmentations(image, output, augmentation, count, image_size, seed)}")


# -- see inside a convnet ------------------------------------------------------------------------


@click.group(cls=Commands, context_settings=CONTEXT)
def visualize() -> None:
    """See inside a convnet: activations, filters, Grad-CAM.

    Feature maps, filter patterns, Grad-CAM heatmaps, and hand-made kernels. Each
    command writes PNGs (into <run>/visualize/ unless told otherwise) and prints their
    paths.
    """


@visualize.command("activations")
@click.argument("run_path", metavar="RUN", type=PathType)
@click.argument("image_path", metavar="IMAGE", type=PathType)
@add_options(
    option("--layers", "layer_names", default=None,
           callback=lambda ctx, param, value: [n.strip() for n in value.split(",") if n.strip()]
           if value else None,
           help="Comma-separated layer names (default: every convolution and pooling layer)."),
    option("--channels", "max_channels", default=64, help="Channels shown per layer."),
)
@model_choice_option
@output_option("Folder to write to (default: <run>/visualize/activations-<image>/).", "out_dir")
def visualize_activations(**options) -> None:
    """Feature maps of each layer for one image.

    One PNG per convolution or pooling layer: a grid of its channels for IMAGE, each
    channel contrast-stretched on its own.
    """
    from pipeline.visualize.activations import write_activations

    echo_paths(write_activations(**options))


@visualize.command("filters")
@click.argument("run_path", metavar="RUN", type=PathType)
@add_options(
    option("--layer", "layer_name", required=True,
           help="A convolution layer, e.g. conv1 or block1_conv1."),
    option("--count", default=16, help="Filters to show (the first N)."),
    option("--steps", default=30, help="Gradient ascent steps."),
)
@model_choice_option
@output_option("PNG to write (default: <run>/visualize/filters-<layer>.png).", "out")
def visualize_filters(**options) -> None:
    """Input patterns that excite a layer's filters most.

    Found by gradient ascent in input space from a grey, slightly noisy image.
    """
    from pipeline.visualize.filters import write_filter_patterns

    echo_paths([write_filter_patterns(**options)])


@visualize.command("gradcam")
@click.argument("run_path", metavar="RUN", type=PathType)
@click.argument("image_paths", metavar="IMAGES", nargs=-1, required=True, type=PathType)
@add_options(
    option("--class", "class_name", default=None,
           help="Class to explain (default: the predicted class of each image)."),
    option("--layer", "layer_name", default=None,
           help="Convolution layer (default: the last one)."),
)
@model_choice_option
@output_option("Folder to write to (default: <run>/visualize/).", "out_dir")
def visualize_gradcam(**options) -> None:
    """Grad-CAM: where the model looks for a class.

    One PNG per image: the input, the heatmap on the layer's grid, and the heatmap
    over the photo, for the predicted class or --class.
    """
    from pipeline.visualize.gradcam_plot import write_gradcam

    echo_paths(write_gradcam(**options))


@visualize.command("kernels")
@click.argument("image", type=PathType)
@add_options(option("--size", default=256,
                    help="The photo is shrunk to this many pixels on its longest side."))
@output_option("PNG to write (default: models/kernels-<image>.png).")
def visualize_kernels(image, size, output) -> None:
    """Hand-made 3x3 kernels applied to an image.

    Identity, edge detection, sharpen, box and Gaussian blur applied to IMAGE side by side:
    what a convolution does before any learning.
    """
    from pipeline.visualize.kernels import write_kernel_effects

    echo_paths([write_kernel_effects(image, output, size)])


# -- accounting -----------------------------------------------------------------------------------


@click.command("summary", context_settings=CONTEXT)
@click.argument("spec", metavar="MODEL")
@add_options(
    option("--image-size", type=click.IntRange(min=1), default=None,
           help="Input size for a model given by name (default: its native size, e.g. 224)."),
    option("--include-top", is_flag=True,
           help="For a model given by name: include its ImageNet classifier."),
)
def summary(**options) -> None:
    """Per-layer shapes, parameters, MACs, receptive fields.

    Prints a table: output shape, parameter count, multiply-accumulates per image and the
    receptive field of each layer, with totals. MODEL is a run folder, a .keras file, or
    an architecture name (vgg16, resnet50, mobilenet_v2, xception, efficientnet_b0, ...
    or scratch), built without weights.
    """
    from pipeline.evaluation.architectures import model_to_inspect
    from pipeline.models.accounting import account_model, format_account

    click.echo(format_account(account_model(model_to_inspect(**options))))
