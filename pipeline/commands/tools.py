"""Looking at runs and models: ``plot`` (learning curves), ``visualize ...`` and ``summary``.

Plot a run's curves to spot overfitting; look inside a convnet; count what it costs.
``pipeline.cli`` adds them to its main group; the plotting code is imported inside the commands.
"""

from __future__ import annotations

import click
import cloup

from pipeline.commands.base import CONTEXT, Command, Commands
from pipeline.commands.options import (
    PathType,
    add_options,
    echo_paths,
    model_choice_option,
    option,
    output_option,
    run_argument,
)

RUN = run_argument()


@cloup.command("plot", cls=Command, examples=(
    "python cli.py plot models/<run>                       # curves.png in the run folder",
    "python cli.py plot models/<run> models/<other-run> --smooth 0.8 -o compare.png",
))
@cloup.argument("runs", nargs=-1, required=True, type=PathType, help="Run folders.")
@add_options(
    option("--smooth", "smoothing", default=0.0,
           help="Exponential moving average factor in [0, 1); 0.8 suits noisy curves."),
    option("--patience", default=3,
           help="Epochs of rising validation loss that mark the onset of overfitting."),
    section="Plot",
)
@output_option("PNG to write (default: curves.png in the run folder; for several runs, "
               "models/compare-<runs>.png).")
def plot(runs, output, smoothing, patience) -> None:
    """Plot training vs validation accuracy and loss of one or more runs, to spot overfitting."""
    from pipeline.plots.curves import default_output, plot_runs
    from pipeline.runs.folder import Run
    from pipeline.system.paths import output_file

    opened = [Run.open(path) for path in runs]
    default = default_output(opened)
    out = output_file(output, default.name, default.parent, "output")
    click.echo(f"wrote {plot_runs(opened, out, smoothing, patience)}")


# -- see inside a convnet --------------------------------------------------------------------------


@cloup.group(cls=Commands, context_settings=CONTEXT, examples=(
    "python cli.py visualize gradcam models/<run> photo.jpg",
    "python cli.py visualize activations models/<run> photo.jpg --layers conv1,pool1",
))
def visualize() -> None:
    """See inside a convnet: activations, filters, Grad-CAM.

    Feature maps, filter patterns, Grad-CAM heatmaps, and hand-made kernels. Each
    command writes PNGs (into <run>/visualize/ unless told otherwise) and prints their
    paths.
    """


@visualize.command("activations", examples=(
    "python cli.py visualize activations models/<run> photo.jpg",
    "python cli.py visualize activations models/<run> photo.jpg --layers block1_conv1",
))
@RUN
@cloup.argument("image_path", metavar="IMAGE", type=PathType, help="A photo.")
@add_options(
    option("--layers", "layer_names", default=None,
           callback=lambda ctx, param, value: [n.strip() for n in value.split(",") if n.strip()]
           if value else None,
           help="Comma-separated layer names (default: every convolution and pooling layer)."),
    option("--channels", "max_channels", default=64, help="Channels shown per layer."),
    section="Layers",
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


@visualize.command("filters", examples=(
    "python cli.py visualize filters models/<run> --layer block1_conv1",
    "python cli.py visualize filters models/<run> --layer conv1 --count 32 --steps 60",
))
@RUN
@add_options(
    option("--layer", "layer_name", required=True,
           help="A convolution layer, e.g. conv1 or block1_conv1."),
    option("--count", default=16, help="Filters to show (the first N)."),
    option("--steps", default=30, help="Gradient ascent steps."),
    section="Layers",
)
@model_choice_option
@output_option("PNG to write (default: <run>/visualize/filters-<layer>.png).", "out")
def visualize_filters(**options) -> None:
    """Input patterns that excite a layer's filters most.

    Found by gradient ascent in input space from a grey, slightly noisy image.
    """
    from pipeline.visualize.filters import write_filter_patterns

    echo_paths([write_filter_patterns(**options)])


@visualize.command("gradcam", examples=(
    "python cli.py visualize gradcam models/<run> photo.jpg other.jpg",
    "python cli.py visualize gradcam models/<run> photo.jpg --class dogs --layer block5_conv3",
))
@RUN
@cloup.argument("image_paths", metavar="IMAGES", nargs=-1, required=True, type=PathType,
                help="Photos.")
@add_options(
    option("--class", "class_name", default=None,
           help="Class to explain (default: the predicted class of each image)."),
    option("--layer", "layer_name", default=None,
           help="Convolution layer (default: the last one)."),
    section="Layers",
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


@visualize.command("kernels", examples=(
    "python cli.py visualize kernels photo.jpg",
    "python cli.py visualize kernels photo.jpg --size 512 -o kernels.png",
))
@cloup.argument("image", type=PathType, help="A photo.")
@add_options(option("--size", default=256,
                    help="The photo is shrunk to this many pixels on its longest side."),
             section="Data")
@output_option("PNG to write (default: models/kernels-<image>.png).")
def visualize_kernels(image, size, output) -> None:
    """Hand-made 3x3 kernels applied to an image.

    Identity, edge detection, sharpen, box and Gaussian blur applied to IMAGE side by side:
    what a convolution does before any learning.
    """
    from pipeline.visualize.kernels import write_kernel_effects

    echo_paths([write_kernel_effects(image, output, size)])


# -- accounting -----------------------------------------------------------------------------------


@cloup.command("summary", cls=Command, context_settings=CONTEXT, examples=(
    "python cli.py summary models/<run>",
    "python cli.py summary resnet50 --image-size 224 --include-top",
))
@cloup.argument("spec", metavar="MODEL",
                help="A run folder, a .keras file, or an architecture name.")
@add_options(
    option("--image-size", type=click.IntRange(min=1), default=None,
           help="Input size for a model given by name (default: its native size, e.g. 224)."),
    option("--include-top", is_flag=True,
           help="For a model given by name: include its ImageNet classifier."),
    section="Model",
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
