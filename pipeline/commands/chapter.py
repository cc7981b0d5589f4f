"""The commands around a whole chapter: ``run`` (every step) and ``report``.

``pipeline.cli`` adds them to its main group. Light on purpose: presets and thresholds come from
``pipeline.workflows.chapter.presets`` (no TensorFlow), so ``--help`` answers at once.
"""

from __future__ import annotations

import inspect

import click
import cloup

from pipeline.commands.base import Command
from pipeline.commands.choices import ARCHITECTURE_NAMES, BASE_NAMES, Names
from pipeline.commands.options import (
    PathType,
    add_options,
    dataset_option,
    field_defaults,
    option,
    take_over_option,
)
from pipeline.devices.strategies import STRATEGIES
from pipeline.errors import PipelineError
from pipeline.models.drop_path_options import DROP_PATH_HELP
from pipeline.training.mixing_options import CUTMIX_HELP, MIXUP_HELP
from pipeline.training.options import (
    CLASS_WEIGHT_REASON,
    CLASS_WEIGHTS,
    LABEL_SMOOTHING_HELP,
    PRECISION_HELP,
    PRECISIONS,
)
from pipeline.workflows.chapter.plan import ChapterConfig, format_duration, parse_duration
from pipeline.workflows.chapter.presets import (
    ALL,
    DEFAULT_BUDGET_SECONDS,
    EPOCH_STEPS,
    MEDIUM_DATASET,
    PRESETS,
    RECOMMENDED_BASE,
    SECOND_BASE,
    SMALL_DATASET,
    STEP_ENSEMBLE,
    STEP_EXTRACT_SECOND,
    STEP_FINETUNE_SECOND,
    STEPS,
    WHOLE_BASE,
)

CHAPTER = field_defaults(ChapterConfig)


class Duration(click.ParamType):
    """``10m``, ``1h``, ``90s`` or ``600`` (seconds) -> seconds."""

    name = "TIME"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, (int, float)):
            return value
        try:
            return parse_duration(value)
        except PipelineError as error:
            self.fail(str(error), param, ctx)


class StepEpochs(click.ParamType):
    """``5`` (every training step) or ``extract=10,finetune=3`` -> {step: epochs}."""

    name = "EPOCHS"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        text = str(value).strip()
        try:
            if "=" not in text:
                return dict.fromkeys(EPOCH_STEPS, int(text))
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


@cloup.command("run", cls=Command, examples=(
    "python cli.py run --source ~/photos/flowers   # any folder of photos: prepare, train, report",
    "python cli.py run --source ~/Downloads/train --preset cpu-quick   # Kaggle's cats and dogs",
    "python cli.py run --steps extract,finetune --base efficientnet_lite0 --epochs extract=10",
))
@add_options(
    option("--source", type=PathType, default=CHAPTER["source"],
           help="Folder of photos to prepare the dataset from when --data is not prepared yet "
                "(one sub-folder per class; train/, val/, test/ of those; a flat folder with "
                "its labels.csv; Kaggle train/ or PetImages: see `data prepare`)."),
    option("--labels", type=PathType, default=CHAPTER["labels"],
           help="When preparing a flat folder: the CSV naming each photo's label (default: "
                "the folder's only CSV; see `data prepare`)."),
    option("--labels-columns", default=CHAPTER["labels_columns"], metavar="FILE,LABEL",
           help="The CSV's columns holding the file names and the labels (default: from "
                "its header)."),
    section="Data",
)
@dataset_option(CHAPTER["data_dir"], "Prepared dataset folder, made from --source when missing "
               "(default: data/<the source folder's name>, data/cats_and_dogs_small for "
               "Kaggle's cats and dogs and without --source).")
@add_options(
    option("--split", default=CHAPTER["split"], metavar="TRAIN,VAL,TEST",
           help="When preparing from --source: fractions of each class, e.g. 0.8,0.1,0.1 "
                "(default: 0.8,0.1,0.1, or the book's 1000/500/500 per class for Kaggle's "
                "cats and dogs; see `data prepare`)."),
    option("--split-sizes", type=int, nargs=3, default=CHAPTER["split_sizes"],
           help="When preparing from --source: photos per class in train, validation, test "
                "(instead of --split)."),
    section="Data",
)
@add_options(
    option("--models-dir", type=PathType, default=CHAPTER["models_dir"],
           help="Where the run folder goes (the feature cache is <models-dir>/features)."),
    option("--run-name", default=CHAPTER["run_name"],
           help="Name of the run folder (default: chapter-<preset or auto>-<dataset>, so the "
                "same command resumes the same folder)."),
    take_over_option(expose=True),
    section="Output",
)
@add_options(
    option("--preset", type=click.Choice(list(PRESETS)), default=CHAPTER["preset"],
           help=_presets_help() + ". Every value can be overridden by the options below."),
    option("--steps", type=StepList(), default=CHAPTER["steps"], show_default=False,
           help=f"Comma-separated steps among {', '.join(STEPS)}, or {ALL} (default: the "
                "preset's, else the rule of thumb's)."),
    option("--budget", type=Duration(), default=CHAPTER["budget"], show_default=False,
           help="Time for the training steps, e.g. 10m, 1h or 900s: a training step stops "
                "before an epoch that would not fit (its best epoch is kept), and a step not "
                "begun when it is spent is skipped; the test evaluation of each step and the "
                "report come after it (77 s for five steps on 1,000 test photos here). "
                "Default: "
                f"{format_duration(DEFAULT_BUDGET_SECONDS)} when the rule of thumb fine-tunes "
                "the whole base, else no limit."),
    section="Steps",
)
@add_options(
    option("--base", default=CHAPTER["base"], type=Names(BASE_NAMES),
           help="Conv base of the transfer steps (default: the preset's, else efficientnet_lite1, "
                "the base that validated best here)."),
    option("--second-base", default=CHAPTER["second_base"], type=Names(BASE_NAMES),
           help=f"Conv base of the steps {STEP_EXTRACT_SECOND} and {STEP_FINETUNE_SECOND}, whose "
                f"fine-tuned model the {STEP_ENSEMBLE} step averages with the first's (default: "
                f"{SECOND_BASE}, the fastest Lite base; {RECOMMENDED_BASE} when --base is "
                f"{SECOND_BASE})."),
    option("--architecture", default=CHAPTER["architecture"], type=Names(ARCHITECTURE_NAMES),
           help="Model of the from-scratch steps, as for `train`: convnet (the book's first "
                "edition, 150 px) or mini_xception (its second, 180 px)."),
    option("--weights", default=CHAPTER["weights"], help="Conv base weights, as for `extract`."),
    option("--image-size", type=int, default=CHAPTER["image_size"],
           help="Image size (default: the preset's, else the base's own; the scratch steps: "
                "their architecture's own)."),
    option("--unfreeze", default=CHAPTER["unfreeze"],
           help="What fine-tuning thaws: top, all, N layers or a layer name (default: the "
                "preset's, else the rule of thumb's). Giving it adds the finetune step."),
    section="Model",
)
@add_options(
    option("--epochs", type=StepEpochs(), default=CHAPTER["epochs"], show_default=False,
           help="Epochs of every training step (5) or of some (extract=10,finetune=3); "
                "default: the preset's, else each workflow's."),
    option("--batch-size", type=int, default=CHAPTER["batch_size"],
           help="Batch size of every step (default: each workflow's)."),
    option("--seed", default=CHAPTER["seed"]),
    option("--class-weight", default=CHAPTER["class_weight"], type=click.Choice(CLASS_WEIGHTS),
           help=f"How classes weigh in every training step's loss, as for `train`. "
                f"{CLASS_WEIGHT_REASON}"),
    option("--label-smoothing", type=float, default=CHAPTER["label_smoothing"],
           help=f"{LABEL_SMOOTHING_HELP} Every training step's (default: "
                f"{WHOLE_BASE.label_smoothing} where the rule of thumb fine-tunes the whole "
                "base, measured on Oxford 17 Flowers' validation split, else 0)."),
    option("--drop-path", type=float, default=CHAPTER["drop_path"], metavar="R",
           help=f"{DROP_PATH_HELP} The fine-tuning steps' (off by default: it tied on "
                "Oxford 17 Flowers' validation split with the whole-base recipe)."),
    option("--mixup", type=float, default=CHAPTER["mixup"],
           help=f"{MIXUP_HELP} In every step that trains on images, after augmentation: the "
                "scratch steps, and extract-augment and fine-tuning with --views 0 (as the "
                "whole-base recipe does); the steps on cached features or views train without "
                "(none planned that trains on images: refused)."),
    option("--cutmix", type=float, default=CHAPTER["cutmix"],
           help=f"{CUTMIX_HELP} In the same steps as --mixup."),
    section="Training",
)
@add_options(
    option("--augment/--no-augment", default=CHAPTER["augment"],
           help="Fine-tune under augmentation (default: the preset's, else on; the -augment "
                "steps always augment, the others never)."),
    option("--views", type=int, default=CHAPTER["views"],
           help="With augmentation: cached augmented views per training image of every step "
                "that augments a pretrained base (extract-augment, finetune); 0: augment on "
                "the fly, through the whole model every epoch (the exact path; slow). "
                "Default: the preset's, else each workflow's."),
    section="Augmentation",
)
@add_options(
    option("--precision", default=CHAPTER["precision"], type=click.Choice(PRECISIONS),
           help=PRECISION_HELP),
    option("--strategy", default=CHAPTER["strategy"], type=click.Choice(STRATEGIES),
           help="Devices of every training step: auto (all local GPUs when there are several), "
                "one, mirrored, multiworker (TF_CONFIG). --batch-size is global, split across "
                "the replicas."),
    section="Devices",
)
@add_options(option("--report/--no-report", default=CHAPTER["report"],
                    help="Write report.html and report.md."), section="Output")
def run(**config) -> None:
    """The whole chapter: prepare, train each step, evaluate on test, report.

    \b
    Each step trains into <models-dir>/<run-name>/<step>/. A step already done with
    the same inputs is skipped; an interrupted run (Ctrl-C, SIGTERM, power loss)
    resumes where it stopped when the same command is started again.
    """
    from pipeline.workflows.chapter.workflow import ChapterConfig, run_chapter

    if config["split_sizes"] is not None:
        config["split_sizes"] = tuple(config["split_sizes"])
    click.echo("\n" + run_chapter(ChapterConfig(**config)).summary())


run.help = inspect.cleandoc(run.help or "") + (
    "\n\nWithout --preset, --steps or --unfreeze, the number of training images "
    "chooses how much of the conv base trains (the transfer-learning rule of thumb):"
    "\n\n\b\n"
    f"  fewer than {SMALL_DATASET:,}: a small dataset; extract (features cached), fine-tune the\n"
    f"  whole base under augmentation, then a second base the same way and the mean of the\n"
    f"  two, within --budget, keeping the step that validates best (the head alone: --steps\n"
    f"  extract,evaluate);\n"
    f"  fewer than {MEDIUM_DATASET:,}: a medium dataset; extract, then fine-tune the top block;\n"
    f"  {MEDIUM_DATASET:,} or more: a large dataset; extract, then fine-tune the whole base.\n"
    "The choice and its reason are printed and recorded in chapter.json."
)


@cloup.command("report", cls=Command, examples=(
    "python cli.py report models/chapter-cpu-quick-cats_and_dogs_small   # a `run` folder",
    "python cli.py report models/<run> models/<other-run> -o models/report --title 'Heads'",
))
@cloup.argument("runs", nargs=-1, required=True, type=PathType,
                help="Run folders, or `run` folders (standing for their steps).")
@add_options(
    option("--wrong", default=8, help="Most confidently wrong test photos shown per run."),
    option("--gradcam", default=3, help="Of which explained with Grad-CAM."),
    option("--title", default=None, help="Title of the report."),
    option("-o", "--output", type=PathType, default=None,
           help="Folder for report.html and report.md, or the .html file itself (default: the "
                "run folder given, for one `run` folder; else models/report)."),
    option("--force", is_flag=True, help="Replace a report already at -o."),
    section="Report",
)
def report(runs, output, wrong, gradcam, title, force) -> None:
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

    chosen = output is not None
    if output is None:
        one_chapter = len(runs) == 1 and is_chapter(runs[0])
        output = runs[0] if one_chapter else CHAPTER["models_dir"] / "report"
    built = report_from_folders(runs, wrong=wrong, gradcam=gradcam, title=title)
    files = write_report(built, output, force=force or not chosen)
    click.echo(f"wrote {files.html}\nwrote {files.markdown}")
