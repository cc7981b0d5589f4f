"""Using a trained run: ``evaluate`` it, ``predict`` images with it, ``export`` it for serving.

The evaluation code, and with it TensorFlow, is imported inside the commands, so ``--help``
answers at once.
"""

from __future__ import annotations

import sys

import click
import cloup

from pipeline.commands.base import Command
from pipeline.commands.options import (
    PathType,
    add_options,
    dataset_option,
    model_choice_option,
    option,
    output_option,
    run_argument,
    tta_option,
)

RUN = run_argument("A run folder (models/<run>): train, extract or finetune.")


@cloup.command("evaluate", cls=Command, examples=(
    "python cli.py evaluate models/<run>                  # test metrics and worst mistakes",
    "python cli.py evaluate models/<run> --split validation --tta 12",
))
@RUN
@add_options(option("--split", default="test", type=click.Choice(["test", "validation", "train"])),
             section="Data")
@model_choice_option
@add_options(option("--top-wrong", default=16,
                    help="How many of the most confidently wrong images to show."),
             section="Output")
@dataset_option(None, "Dataset folder (default: the one the run was trained on).")
@add_options(option("--batch-size", default=32), section="Model")
@tta_option(". Recorded in metrics.json.")
@output_option("Folder to write to (default: <run>/evaluation-<split>[-tta<N>]/, replaced "
               "on each evaluation).", "out_dir")
@add_options(option("--force", is_flag=True,
                    help="Replace evaluation files already in the folder given with -o."),
             section="Output")
def evaluate(**options) -> None:
    """Metrics, confusion matrix and worst mistakes of a run.

    Evaluates the run's saved model on a split of its dataset. Prints loss, accuracy,
    per-class precision/recall/F1 and ROC AUC (two classes); writes metrics.json,
    confusion_matrix.json/.png and most_wrong.png, a contact sheet of the images the
    model got wrong with the most confidence.
    """
    from pipeline.evaluation.evaluate import evaluate_run

    click.echo(evaluate_run(**options).summary())


@cloup.command("predict", cls=Command, examples=(
    "python cli.py predict models/<run> photo.jpg more-photos/",
    "python cli.py predict models/<run> photos/ --format csv > predictions.csv",
    "python cli.py predict models/<run> photo.jpg --top-k 3",
))
@RUN
@cloup.argument("inputs", metavar="PATHS", nargs=-1, required=True, type=PathType,
                help="Image files, or folders walked for images.")
@add_options(option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
                    default="table", help="table for reading, json or csv for other programs "
                    "(with every class's probability)."),
             option("--top-k", "top_k", default=1, type=click.IntRange(min=1),
                    help="Show the K most probable classes of each image (at most the run's "
                         "number of classes)."),
             section="Output")
@model_choice_option
@add_options(option("--batch-size", default=32), section="Model")
@tta_option()
def predict(fmt, **options) -> None:
    """Predict the class of images (files or folders).

    Folders in PATHS are walked for images. Prints the class and its probability per
    image (the K most probable with --top-k); json and csv also give every class's
    probability. Unreadable files are reported on their own row and the rest are still
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


@cloup.command("export", cls=Command, examples=(
    "python cli.py export models/<run>                    # a SavedModel for TF Serving",
    "python cli.py export models/<run> --format tflite -o flowers.tflite",
))
@RUN
@model_choice_option
@add_options(
    option("--format", "fmt", type=click.Choice(["savedmodel", "tflite", "onnx"]),
           default="savedmodel",
           help="savedmodel (a folder for TF Serving), tflite (a file for phones), onnx (needs "
                "the onnx extra)."),
    option("-o", "--output", type=PathType, default=None,
           help="Where to write (default: <run>/export/savedmodel/, model.tflite or model.onnx; "
                "an existing folder is written into)."),
    option("--force", is_flag=True,
           help="Replace an earlier export (only what an export wrote, never other files; an "
                "existing folder that is not an export is written into)."),
    section="Output",
)
def export(run_path, fmt, output, force, which) -> None:
    """Export a run's model for serving, raw photos in, class names beside it.

    savedmodel and tflite take uint8 RGB photos of any size and resize them inside exactly
    as training did; they answer each class's probability and the class names, which are
    also written to labels.txt (one per line, in class-index order). onnx takes float32
    images already at the model's size. Augmentation is left out and every layer computes in
    float32.
    """
    from pipeline.evaluation.export import DEFAULT_NAMES, describe_input, export_model, labels_file
    from pipeline.evaluation.saved_model import load_run_model

    loaded = load_run_model(run_path, which)
    output = output or loaded.run.file("export") / DEFAULT_NAMES[fmt]
    written = export_model(loaded, output, fmt, force=force)
    click.echo(f"wrote {written} and {labels_file(written, fmt)}\n"
               f"  {describe_input(fmt, loaded.image_size)}\n"
               f"  classes: {', '.join(loaded.class_names)}")
