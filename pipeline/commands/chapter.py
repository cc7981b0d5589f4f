"""The commands around a whole chapter: ``run`` (every step), ``report`` and ``export``.

``cli.py`` adds them to its main group. Light on purpose: presets and thresholds come from
``pipeline.workflows.chapter.presets`` (no TensorFlow), so ``--help`` answers at once.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from pipeline.commands.options import (
    PathType,
    RegistryChoice,
    add_options,
    dataset_option,
    model_choice_option,
    option,
)
from pipeline.devices.strategies import STRATEGIES
from pipeline.training.options import PRECISIONS
from pipeline.workflows.chapter.presets import (
    ALL,
    MEDIUM_DATASET,
    PRESETS,
    SMALL_DATASET,
    STEPS,
    TRAINING_STEPS,
)


class StepEpochs(click.ParamType):
    """``5`` (every training step) or ``extract=10,finetune=3`` -> {step: epochs}."""

    name = "EPOCHS"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        text = str(value).strip()
        try:
            if "=" not in text:
                return dict.fromkeys(TRAINING_STEPS, int(text))
            pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
            return {step.strip(): int(epochs) for step, epochs in pairs}
        except ValueError:
            self.fail(f"{value!r}: give a number of epochs, or step=epochs pairs such as "
                      "extract=10,finetune=3")


class StepList(click.ParamType):
    """``extract,finetune`` -> ("extract", "finetune")."""

    name = "STEPS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _presets_help() -> str:
    return "; ".join(f"{preset.name}: {preset.description}" for preset in PRESETS.values())


@click.command("run")
@add_options(
    option("--source", type=PathType, default=None,
           help="Folder of photos to prepare the dataset from when --data is not prepared yet "
                "(Kaggle train/, PetImages, or one sub-folder per class)."),
)
@dataset_option(help="Prepared dataset folder (made from --source when missing).")
@add_options(
    option("--split-sizes", type=int, nargs=3, default=(1000, 500, 500),
           help="Photos per class in train, validation, test when preparing from --source."),
    option("--models-dir", type=PathType, default=Path("models"),
           help="Where the run folder goes (the feature cache is <models-dir>/features)."),
    option("--run-name", default=None,
           help="Name of the run folder (default: run-<preset or auto>-<dataset>, so the "
                "same command resumes the same folder)."),
    option("--preset", type=click.Choice(list(PRESETS)), default=None,
           help=_presets_help() + ". Every value can be overridden by the options below."),
    option("--steps", type=StepList(), default=(), show_default=False,
           help=f"Comma-separated steps among {', '.join(STEPS)}, or {ALL} (default: the "
                "preset's, else the rule of thumb's)."),
    option("--base", default=None, type=RegistryChoice("pipeline.models.bases:BASES"),
           help="Conv base of the transfer steps (default: the preset's, else vgg16)."),
    option("--architecture", default="convnet",
           type=RegistryChoice("pipeline.models.scratch:ARCHITECTURES"),
           help="Model of the from-scratch steps, as for `train`: convnet (the book's first "
                "edition, 150 px) or mini_xception (its second, 180 px)."),
    option("--weights", default="auto", help="Conv base weights, as for `extract`."),
    option("--image-size", type=int, default=None,
           help="Image size (default: the preset's, else the base's own; the scratch steps: "
                "their architecture's own)."),
    option("--epochs", type=StepEpochs(), default={}, show_default=False,
           help="Epochs of every training step (5) or of some (extract=10,finetune=3); "
                "default: the preset's, else each workflow's."),
    option("--unfreeze", default=None,
           help="What fine-tuning thaws: top, all, N layers or a layer name (default: the "
                "preset's, else the rule of thumb's). Giving it adds the finetune step."),
    option("--views", type=int, default=None,
           help="Fine-tuning's cached augmented views per image (0: none; default: the "
                "preset's, else finetune's)."),
    option("--batch-size", type=int, default=None,
           help="Batch size of every step (default: each workflow's)."),
    option("--seed", default=1337),
    option("--precision", default="float32", type=click.Choice(PRECISIONS),
           help="mixed: float16 on a GPU, bfloat16 on a CPU."),
    option("--strategy", default="auto", type=click.Choice(STRATEGIES),
           help="Devices of every training step: auto (all local GPUs when there are several), "
                "one, mirrored, multiworker (TF_CONFIG). --batch-size is global, split across "
                "the replicas."),
    option("--report/--no-report", default=True, help="Write report.html and report.md."),
)
def run(**config) -> None:
    """The whole chapter: prepare, train each step, evaluate on test, report.

    \b
    Each step trains into <models-dir>/<run-name>/<step>/. A step already done with
    the same inputs is skipped; an interrupted run (Ctrl-C, SIGTERM, power loss)
    resumes where it stopped when the same command is started again.
    """
    from pipeline.workflows.chapter.workflow import RunConfig, run_chapter

    config["split_sizes"] = tuple(config["split_sizes"])
    click.echo("\n" + run_chapter(RunConfig(**config)).summary())


run.help = inspect.cleandoc(run.help or "") + (
    "\n\nWithout --preset, --steps or --unfreeze, the number of training images "
    "chooses how much of the conv base trains (the transfer-learning rule of thumb):"
    "\n\n\b\n"
    f"  fewer than {SMALL_DATASET:,}: a small dataset; the whole base stays frozen, extract only\n"
    f"  (features cached);\n"
    f"  fewer than {MEDIUM_DATASET:,}: a medium dataset; extract, then fine-tune the top block;\n"
    f"  {MEDIUM_DATASET:,} or more: a large dataset; extract, then fine-tune the whole base.\n"
    "The choice and its reason are printed and recorded in run.json."
)


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=PathType)
@add_options(
    option("-o", "--output", type=PathType, default=None,
           help="Folder for report.html and report.md (default: the run folder given, for one "
                "`run` folder; else models/report)."),
    option("--wrong", default=8, help="Most confidently wrong test photos shown per run."),
    option("--gradcam", default=3, help="Of which explained with Grad-CAM."),
    option("--title", default=None, help="Title of the report."),
)
def report(runs, output, wrong, gradcam, title) -> None:
    """Compare runs in one self-contained HTML file (and Markdown).

    RUNS are run folders or `run` folders (standing for their steps). The report holds
    each strategy's validation and test accuracy, epochs, wall time and trainable
    parameters beside the book's numbers, overlaid learning curves (fine-tuning drawn
    after its extraction run's epochs), confusion matrices and the most confidently
    wrong test photos with Grad-CAM (from `evaluate RUN`).
    """
    from pipeline.report import write_report
    from pipeline.report.from_runs import report_from_folders
    from pipeline.runs.chapter_record import is_chapter

    built = report_from_folders(runs, wrong=wrong, gradcam=gradcam, title=title)
    if output is None:
        output = runs[0] if len(runs) == 1 and is_chapter(runs[0]) else Path("models/report")
    files = write_report(built, output)
    click.echo(f"wrote {files.html}\nwrote {files.markdown}")


@click.command("export")
@click.argument("run_path", metavar="RUN", type=PathType)
@add_options(
    option("--format", "fmt", type=click.Choice(["savedmodel", "tflite", "onnx"]),
           default="savedmodel",
           help="savedmodel (a folder for TF Serving), tflite (a file for phones), onnx (needs "
                "the onnx extra)."),
    option("-o", "--output", type=PathType, default=None,
           help="Where to write (default: <run>/export/model.<format>; savedmodel: a folder)."),
    option("--force", is_flag=True, help="Replace an existing export."),
)
@model_choice_option
def export(run_path, fmt, output, force, which) -> None:
    """Export a run's model for serving, preprocessing inside: raw RGB images (0..255) in.

    Goes through Keras' own Model.export; augmentation is left out and every layer
    computes in float32.
    """
    from pipeline.evaluation.export import export_model
    from pipeline.evaluation.saved_model import load_run_model

    loaded = load_run_model(run_path, which)
    suffix = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}[fmt]
    output = output or loaded.run.file("export") / suffix
    click.echo(f"wrote {export_model(loaded.model, output, fmt, force=force)} "
               f"(input: float32 images (batch, {loaded.image_size}, {loaded.image_size}, 3) "
               f"in 0..255; classes {', '.join(loaded.class_names)})")
