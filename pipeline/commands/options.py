"""The command line's shared option groups, each declared once and passed straight through.

Click parameter names are the fields of the configs they fill (``--image-size`` fills
``image_size``); a group of options becomes one object (``TrainingOptions``,
``AugmentConfig``, ``HeadOptions``); each option is shown under a titled section of the
help (``help_section``: Data, Model, Training, Augmentation, Output, ...). Defaults are read
from the configs (``field_defaults``), choice lists from ``pipeline.commands.choices`` (held
to the registries by a test). Light on purpose: nothing here imports TensorFlow, so
``--help`` answers at once.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from pathlib import Path
from typing import Any

import click
import cloup

from pipeline.data.augment_options import FILL_MODES, PLACEMENTS, AugmentConfig
from pipeline.devices.strategies import STRATEGIES
from pipeline.models.head_options import HeadOptions
from pipeline.models.layer_decay_options import LAYER_DECAY_HELP
from pipeline.models.schedules import SCHEDULES, ScheduleOptions
from pipeline.training.mixing_options import CUTMIX_HELP, MIXING_WHERE, MIXUP_HELP
from pipeline.training.options import (
    CLASS_WEIGHT_REASON,
    CLASS_WEIGHTS,
    LABEL_SMOOTHING_HELP,
    OPTIMIZERS,
    PRECISION_HELP,
    PRECISIONS,
)

PathType = click.Path(path_type=Path)


def field_defaults(config: type) -> dict[str, Any]:
    """The defaults of the dataclass ``config``'s fields: the command line restates none, so
    an option's default is its config field's (a field without one is left out)."""
    defaults = {}
    for field in dataclasses.fields(config):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


class Sizes(click.ParamType):
    """``150,180`` -> (150, 180)."""

    name = "SIZES"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            sizes = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r}: give sizes in pixels separated by commas, e.g. 150,180,224")
        if any(size < 1 for size in sizes):
            self.fail("sizes must be positive")
        return sizes


# -- building blocks -------------------------------------------------------------------------------


def option(*decls: str, section: str | None = None, **attrs) -> click.Option:
    """A fresh ``click.Option`` (each command gets its own), showing its default if it has one,
    shown in the help under ``section``."""
    attrs.setdefault("show_default", "default" in attrs and attrs["default"] is not None)
    made = click.Option(decls, **attrs)
    made.help_section = section
    return made


def add_options(*params: click.Parameter, section: str | None = None):
    """Decorator adding ready-made click parameters, in the order given; those without a
    section of their own are shown under ``section``."""
    for param in params:
        if section and not getattr(param, "help_section", None):
            param.help_section = section

    def decorate(command):
        command.__dict__.setdefault("__click_params__", []).extend(reversed(params))
        return command

    return decorate


def in_section(title: str, *params: click.Option) -> tuple[click.Option, ...]:
    """``params``, shown in the help under ``title``."""
    for param in params:
        param.help_section = title
    return params


def collect_into(target: str, factory: str, *params: click.Option):
    """Options whose values become one object ``factory(**values)`` passed as ``target``."""

    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            module, name = factory.split(":")
            values = {param.name: kwargs.pop(param.name) for param in params}
            kwargs[target] = getattr(importlib.import_module(module), name)(**values)
            return command(*args, **kwargs)

        return add_options(*params)(wrapper)

    return decorate


# -- option groups: declared once, passed straight into a config -----------------------------------


def augmentation_options(command):
    """The augmentation knobs (``AugmentConfig``), shared by every command that can augment."""
    defaults = AugmentConfig()
    return collect_into("augmentation", "pipeline.data.augment_options:AugmentConfig", *in_section(
        "Augmentation",
        option("--rotation", default=defaults.rotation, help="Max rotation, degrees."),
        option("--width-shift", default=defaults.width_shift, help="Max shift, fraction."),
        option("--height-shift", default=defaults.height_shift, help="Max shift, fraction."),
        option("--shear", default=defaults.shear, help="Max shear factor."),
        option("--zoom", default=defaults.zoom, help="Max zoom in/out, fraction."),
        option("--flip/--no-flip", "horizontal_flip", default=defaults.horizontal_flip,
               help="Random horizontal flips."),
        option("--pca-color", default=defaults.pca_color,
               help="AlexNet PCA colour shift, std of alpha (0.1 in the paper; 0 = off)."),
        option("--fill-mode", default=defaults.fill_mode, type=click.Choice(FILL_MODES),
               help="How pixels moved in from outside are filled."),
        option("--augment-in", "placement", default=defaults.placement,
               type=click.Choice(PLACEMENTS),
               help="Where augmentation runs when training on images: model (its first "
                    "layers; on a GPU, on the accelerator), data (tf.data on CPU threads, "
                    "overlapping the step), auto: data on a CPU (measured 1.4x faster here), "
                    "model on a GPU."),
    ))(command)


def augment_option(defaults: dict[str, Any], views: bool = True):
    """``--augment/--no-augment`` and ``--views``: the same words in every command that has
    them (train: on the fly only, no views)."""
    params = [option(
        "--augment/--no-augment", default=defaults["augment"],
        help="Train under augmentation (the options below)." + (
            " On --views cached augmented views, or with --views 0 on the fly." if views else
            " On the fly: every epoch draws anew."))]
    if views:
        params.append(option(
            "--views", default=defaults["views"],
            help="With --augment: augmented views per training image whose frozen-part output "
                 "is computed once and cached; each epoch shows every image through one of "
                 "them (a finite set of draws, an approximation). 0: augment on the fly, "
                 "through the whole model every epoch (the exact path; slow)."))
    return add_options(*params, section="Augmentation")


def training_options(config: type):
    """Optimizer, learning rate, batch size, epochs, early stopping, seed, weight averaging,
    class weights, label smoothing, mixup and CutMix, layer decay (Training); precision,
    strategy, jit
    (Devices): ``config``'s ``training`` defaults, with the learning rate and batch size its
    ``TRAINING_DEFAULTS`` fill in when left unset."""
    defaults, workflow = field_defaults(config)["training"], config.TRAINING_DEFAULTS
    rate, batch = workflow.learning_rate, workflow.batch_size
    return collect_into("training", "pipeline.training.options:TrainingOptions", *in_section(
        "Training",
        option("--optimizer", default=defaults.optimizer, type=click.Choice(OPTIMIZERS),
               help="The optimizer."),
        option("--lr", "learning_rate", type=float, default=defaults.learning_rate,
               help=_with_default(
                   "Learning rate.", defaults.learning_rate, rate,
                   "by head: 2e-5 for the book's heads, 1e-3 for gap")),
        option("--batch-size", type=int, default=defaults.batch_size, help=_with_default(
            "Images per step, GLOBAL: split across the replicas of --strategy.",
            defaults.batch_size, batch)),
        option("--epochs", default=defaults.epochs, help="Passes over the training images."),
        option("--early-stopping", type=int, default=defaults.early_stopping,
               help="Stop after this many epochs without a lower validation loss."),
        option("--seed", default=defaults.seed,
               help="Seed of the weights, the shuffles and the augmentation."),
        option("--ema", "ema_momentum", type=float, default=defaults.ema_momentum,
               help="Average the weights over training (exponential moving average, Keras' "
                    "use_ema) with this momentum per step, e.g. 0.998: about the last 500 "
                    "steps. Validation, the best epoch and the saved models use the average "
                    "(default: none)."),
        option("--class-weight", default=defaults.class_weight,
               type=click.Choice(CLASS_WEIGHTS),
               help="How classes weigh in the training loss: none (as they come: a class "
                    "with more photos counts more), balanced (class c's photos weigh "
                    "n / (classes * n_c), from the training split's counts, so every class "
                    f"counts the same). {CLASS_WEIGHT_REASON}"),
        option("--label-smoothing", default=defaults.label_smoothing, help=LABEL_SMOOTHING_HELP),
        option("--mixup", default=defaults.mixup, help=f"{MIXUP_HELP} {MIXING_WHERE}"),
        option("--cutmix", default=defaults.cutmix, help=f"{CUTMIX_HELP} {MIXING_WHERE}"),
        option("--layer-decay", default=defaults.layer_decay, help=LAYER_DECAY_HELP),
    ), *in_section(
        "Devices",
        option("--precision", default=defaults.precision, type=click.Choice(PRECISIONS),
               help=PRECISION_HELP),
        option("--strategy", default=defaults.strategy, type=click.Choice(STRATEGIES),
               help="Devices to train on: auto (all GPUs if several), one, mirrored (all "
                    "local GPUs), multiworker (one process per machine; the cluster is read "
                    "from TF_CONFIG). --batch-size is GLOBAL: split across the replicas."),
        option("--jit/--no-jit", default=defaults.jit,
               help="XLA-compile the training step (default: Keras' own choice, auto). XLA "
                    "measured slower on this CPU for the Lite bases (bench/bench_gpu.py)."),
    ))


def _with_default(help: str, value, workflow_value, otherwise: str = "") -> str:
    """``help`` showing the default the workflow fills in for a field left at None (click
    shows a given default itself)."""
    if value is not None:
        return help
    shown = workflow_value if workflow_value is not None else otherwise
    return f"{help}  [default: {shown}]"


def schedule_options(command):
    """The learning-rate schedule and its warm-up (``ScheduleOptions``)."""
    defaults = ScheduleOptions()
    return collect_into("lr_schedule", "pipeline.models.schedules:ScheduleOptions", *in_section(
        "Learning-rate schedule",
        option("--schedule", default=defaults.schedule, type=click.Choice(SCHEDULES),
               help="Learning rate over training: constant, or cosine (linear warm-up from 0, "
                    "then cosine decay to 0 at the last epoch; --lr is the peak)."),
        option("--warmup-epochs", default=defaults.warmup_epochs,
               help="Epochs of linear warm-up (cosine; fractions allowed)."),
    ))(command)


def head_options(command):
    """The knobs of the classifier heads (``HeadOptions``)."""
    defaults = HeadOptions()
    return collect_into("head_options", "pipeline.models.head_options:HeadOptions", *in_section(
        "Head",
        option("--dense", default=defaults.dense,
               help="Units of the head's hidden Dense layer (0: none)."),
        option("--dropout", default=defaults.dropout, help="Dropout rate before the output."),
        option("--clusters", default=defaults.clusters, help="--head netvlad: clusters K."),
        option("--ghost-clusters", default=defaults.ghost_clusters,
               help="--head netvlad: ghost clusters (GhostVLAD)."),
        option("--local-filters", default=defaults.local_filters, help="--head local: filters."),
    ))(command)


def dataset_option(default: Path | None,
                   help: str = "Prepared dataset folder (see `data prepare`)."):
    return add_options(option("--data", "data_dir", type=PathType, default=default, help=help,
                              section="Data"))


def run_output_options(defaults: dict[str, Any]):
    """Where the run folder goes (``models_dir``) and its name (``run_name``)."""
    return add_options(
        option("--models-dir", type=PathType, default=defaults["models_dir"],
               help="Where run folders are made."),
        option("--run-name", default=defaults["run_name"],
               help="Name of the run folder (default: <kind>-<date>-<time>). The name of a run "
                    "that was interrupted (Ctrl-C, SIGTERM) or failed continues it from its "
                    "last finished epoch, with the same options (--epochs may change)."),
        take_over_option(),
        section="Output",
    )


def take_over_option(expose: bool = False) -> click.Option:
    """``--take-over``: continue a run (and cached work) whose process looks alive but is known
    dead. Not a field of the training configs: it holds ``processes.taking_over()`` for the
    command's duration (``expose``: passed on, as the ``take_over`` field of ``run``)."""

    def hold(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value and not expose:
            from pipeline.system.processes import taking_over

            ctx.with_resource(taking_over())
        return value

    return option("--take-over", is_flag=True, expose_value=expose, callback=hold,
                  help="The run, or the feature cache's work, is held by a process you know "
                       "is dead (its pid now another's, after a reboot or in a container): "
                       "take it over and continue it, keeping what it finished.")


def features_dir_option() -> click.Option:
    """``--features-dir``: the feature cache's folder (``features_dir``)."""
    return option("--features-dir", type=PathType, default=None, section="Feature cache",
                  help="Feature cache folder (default: <models-dir>/features).")


def feature_cache_options(command):
    """The feature cache's folder (``features_dir``) and ``recompute``."""
    return add_options(
        features_dir_option(),
        option("--recompute", is_flag=True, help="Compute the features again even if cached."),
        section="Feature cache",
    )(command)


def run_argument(help: str = "A run folder (models/<run>).", name: str = "run_path"):
    """The RUN argument: a run folder, shown as RUN with ``help``."""
    return cloup.argument(name, metavar="RUN", type=PathType, help=help)


def model_choice_option(command):
    return add_options(option(
        "--model", "which", type=click.Choice(["best", "final"]), default="best",
        section="Model",
        help="Which saved model of the run (the other is used if it is missing)."))(command)


def output_option(help: str, name: str = "output"):
    return add_options(option("-o", "--output", name, type=PathType, default=None, help=help,
                              section="Output"))


def tta_option(help_end: str = "."):
    """``--tta``: test-time augmentation, for evaluate and predict."""
    return add_options(option(
        "--tta", default=1, section="Model",
        help="Test-time augmentation: average over the image and N-1 deterministic "
             "flips/crops (1: none; up to 12; 12 measured best here for VGG16, at 12 times "
             f"the cost){help_end}"))


def echo_paths(paths) -> None:
    for path in paths:
        click.echo(f"wrote {path}")
