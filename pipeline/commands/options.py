"""The command line's shared option groups, each declared once and passed straight through.

Click parameter names are the fields of the configs they fill (``--image-size`` fills
``image_size``); a group of options becomes one object (``TrainingOptions``,
``AugmentConfig``, ``HeadOptions``); choice lists are read from the registries
(``BASES``, ``HEADS``, ``MODES``, ``OPTIMIZERS``, ``PRECISIONS``) so they cannot drift.
Light on purpose: nothing here imports TensorFlow until a command needs it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import sys
from pathlib import Path

import click

from pipeline.devices.strategies import STRATEGIES
from pipeline.models.head_options import HeadOptions
from pipeline.training.options import OPTIMIZERS, PRECISIONS, TrainingOptions

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
FIELD = re.compile(r"`([a-z_][a-z0-9_]*)`")
PathType = click.Path(path_type=Path)


def flag_of(param: click.Parameter) -> str:
    """How the user wrote ``param``: its long flag (``--image-size``) or its argument name."""
    if isinstance(param, click.Option):
        return next((o for o in param.opts if o.startswith("--")), param.opts[0])
    return param.human_readable_name


class Commands(click.Group):
    """A group whose commands turn user mistakes into one line on stderr and exit status 2.

    Library messages name config fields in backticks; a field that is an option of the
    command that ran is shown as that option's flag (`image_size` -> --image-size).

    Stops follow one rule in every command (``pipeline.system.interrupts``): SIGTERM stops like
    Ctrl-C, and the exit status is 130 for Ctrl-C, 143 for SIGTERM, also when training
    absorbed the stop to finish its run's files (or a failure: status 2, as any error).
    A run that did not complete, read by any command, is named in a one-line warning.
    """

    def invoke(self, ctx: click.Context):
        from pipeline.errors import PipelineError
        from pipeline.system import interrupts

        try:
            with interrupts.signals_stop(), _one_line_run_warnings():
                interrupts.take_deferred()  # a stop left by an earlier call is not ours
                result = super().invoke(ctx)
                deferred = interrupts.take_deferred()
                if deferred is not None:
                    raise deferred
                interrupts.raise_swallowed()  # the exit status says so all the same
                return result
        except PipelineError as error:
            command = self.commands.get(ctx.invoked_subcommand or "")
            flags = {**_every_flag(ctx.find_root().command),  # a hint naming another command's
                     **{p.name: flag_of(p) for p in (command.params if command else [])}}
            text = FIELD.sub(lambda m: flags.get(m.group(1), m.group(0)), str(error))
            click.secho(f"error: {text}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt as stop:
            click.echo("terminated" if isinstance(stop, interrupts.Terminated) else "interrupted",
                       err=True)
            sys.exit(interrupts.exit_status(stop))


def _every_flag(command: click.Command) -> dict[str, str]:
    """Field name -> flag over every command under ``command``, for a message that points at
    another command (``data prepare`` with ``source``, seen from ``extract``)."""
    flags = {p.name: flag_of(p) for p in command.params if isinstance(p, click.Option)}
    for sub in getattr(command, "commands", {}).values():
        flags.update(_every_flag(sub))
    return flags


@contextlib.contextmanager
def _one_line_run_warnings():
    """Show ``IncompleteRunWarning`` as ``warning: ...`` on stderr, every time it is raised."""
    import warnings

    from pipeline.runs.folder import IncompleteRunWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", IncompleteRunWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, IncompleteRunWarning):
                click.secho(f"warning: {message}", fg="yellow", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


class RegistryChoice(click.Choice):
    """The names of a registry (``module:ATTRIBUTE``), read when first needed: importing a
    registry loads TensorFlow, which only the commands that use it should wait for."""

    def __init__(self, where: str) -> None:
        self.where, self._names = where, None
        super().__init__(())

    @property
    def choices(self):
        if self._names is None:
            module, attribute = self.where.split(":")
            self._names = tuple(getattr(importlib.import_module(module), attribute))
        return self._names

    @choices.setter
    def choices(self, value) -> None:  # click.Choice.__init__ assigns; the registry rules
        pass


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


# -- option groups: declared once, passed straight into a config --------------------------------


def add_options(*params: click.Parameter):
    """Decorator adding ready-made click parameters, in the order given."""

    def decorate(command):
        command.__dict__.setdefault("__click_params__", []).extend(reversed(params))
        return command

    return decorate


def option_group(target: str, factory: str, *params: click.Option):
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


def option(*decls: str, **attrs) -> click.Option:
    """A fresh ``click.Option`` (each command gets its own), showing its default if it has one."""
    attrs.setdefault("show_default", "default" in attrs and attrs["default"] is not None)
    return click.Option(decls, **attrs)


def augmentation_options(command):
    """The augmentation knobs (``AugmentConfig``), shared by every command that can augment."""
    return option_group(
        "augmentation", "pipeline.data.augment:AugmentConfig",
        option("--rotation", default=40.0, help="Max rotation, degrees."),
        option("--width-shift", default=0.2, help="Max shift, fraction."),
        option("--height-shift", default=0.2, help="Max shift, fraction."),
        option("--shear", default=0.2, help="Max shear factor."),
        option("--zoom", default=0.2, help="Max zoom in/out, fraction."),
        option("--flip/--no-flip", "horizontal_flip", default=True,
               help="Random horizontal flips."),
        option("--pca-color", default=0.0,
               help="AlexNet PCA colour shift, std of alpha (0.1 in the paper; 0 = off)."),
        option("--fill-mode", default="nearest",
               type=click.Choice(["nearest", "reflect", "wrap", "constant"]),
               help="How pixels moved in from outside are filled."),
        option("--augment-in", "placement", default="auto",
               type=click.Choice(["auto", "model", "data"]),
               help="Where augmentation runs when training on images: model (its first "
                    "layers; on a GPU, on the accelerator), data (tf.data on CPU threads, "
                    "overlapping the step), auto: data on a CPU (measured 1.4x faster here), "
                    "model on a GPU."),
    )(command)


def training_options(defaults: TrainingOptions):
    """Optimizer, learning rate, batch size, epochs, early stopping, seed, weight averaging,
    precision, strategy, jit."""
    return option_group(
        "training", "pipeline.training.options:TrainingOptions",
        option("--optimizer", default=defaults.optimizer, type=click.Choice(OPTIMIZERS)),
        option("--lr", "learning_rate", type=float, default=defaults.learning_rate,
               help="Learning rate." if defaults.learning_rate is not None else
               "Learning rate (default: by head: 2e-5 for the book's heads, 1e-3 for gap)."),
        option("--batch-size", default=defaults.batch_size),
        option("--epochs", default=defaults.epochs),
        option("--early-stopping", type=int, default=defaults.early_stopping,
               help="Stop after this many epochs without a lower validation loss."),
        option("--seed", default=defaults.seed),
        option("--ema", "ema_momentum", type=float, default=defaults.ema_momentum,
               help="Average the weights over training (exponential moving average, Keras' "
                    "use_ema) with this momentum per step, e.g. 0.998: about the last 500 "
                    "steps. Validation, the best epoch and the saved models use the average "
                    "(default: none)."),
        option("--precision", default=defaults.precision, type=click.Choice(PRECISIONS),
               help="mixed: float16 compute on a GPU, bfloat16 on a CPU (output and loss "
                    "stay float32)."),
        option("--strategy", default=defaults.strategy, type=click.Choice(STRATEGIES),
               help="Devices to train on: auto (all GPUs if several), one, mirrored (all "
                    "local GPUs), multiworker (one process per machine; the cluster is read "
                    "from TF_CONFIG). --batch-size is GLOBAL: split across the replicas."),
        option("--jit/--no-jit", default=defaults.jit,
               help="XLA-compile the training step (default: Keras' own choice, auto). XLA "
                    "measured slower on this CPU for the Lite bases (bench/bench_gpu.py)."),
    )


def schedule_options(command):
    """The learning-rate schedule and its warm-up (``ScheduleOptions``)."""
    from pipeline.models.schedules import SCHEDULES, ScheduleOptions

    defaults = ScheduleOptions()
    return option_group(
        "lr_schedule", "pipeline.models.schedules:ScheduleOptions",
        option("--schedule", default=defaults.schedule, type=click.Choice(SCHEDULES),
               help="Learning rate over training: constant, or cosine (linear warm-up from 0, "
                    "then cosine decay to 0 at the last epoch; --lr is the peak)."),
        option("--warmup-epochs", default=defaults.warmup_epochs,
               help="Epochs of linear warm-up (cosine; fractions allowed)."),
    )(command)


def views_option(default: int, what: str):
    """``--views``: cached augmented views per training image (``views``)."""
    return add_options(option(
        "--views", default=default,
        help=f"Augmented views per training image whose frozen-part output is computed once "
             f"and cached; each epoch shows every image through one of them ({what}). This "
             f"approximates augmentation by a finite set of draws."))


def head_options(command):
    """The knobs of the classifier heads (``HeadOptions``)."""
    defaults = HeadOptions()
    return option_group(
        "head_options", "pipeline.models.head_options:HeadOptions",
        option("--dense", default=defaults.dense,
               help="Units of the head's hidden Dense layer (0: none)."),
        option("--dropout", default=defaults.dropout, help="Dropout rate before the output."),
        option("--clusters", default=defaults.clusters, help="--head netvlad: clusters K."),
        option("--ghost-clusters", default=defaults.ghost_clusters,
               help="--head netvlad: ghost clusters (GhostVLAD)."),
        option("--local-filters", default=defaults.local_filters,
               help="--head local: filters."),
    )(command)


def dataset_option(default: Path | None = Path("data/cats_and_dogs_small"),
                   help: str = "Prepared dataset folder (see `data prepare`)."):
    return add_options(option("--data", "data_dir", type=PathType, default=default, help=help))


def run_output_options(command):
    """Where the run folder goes (``models_dir``) and its name (``run_name``)."""
    return add_options(
        option("--models-dir", type=PathType, default=Path("models"),
               help="Where run folders are made."),
        option("--run-name", default=None,
               help="Name of the run folder (default: <kind>-<date>-<time>). The name of a run "
                    "that was interrupted (Ctrl-C, SIGTERM) or failed continues it from its "
                    "last finished epoch, with the same options (--epochs may change)."),
    )(command)


def feature_cache_options(command):
    """The feature cache's folder (``features_dir``) and ``recompute``."""
    return add_options(
        option("--features-dir", type=PathType, default=None,
               help="Feature cache folder (default: <models-dir>/features)."),
        option("--recompute", is_flag=True, help="Compute the features again even if cached."),
    )(command)


def model_choice_option(command):
    return add_options(option(
        "--model", "which", type=click.Choice(["best", "final"]), default="best",
        help="Which saved model of the run (the other is used if it is missing)."))(command)


def output_option(help: str, name: str = "output"):
    return add_options(option("-o", "--output", name, type=PathType, default=None, help=help))


def echo_paths(paths) -> None:
    for path in paths:
        click.echo(f"wrote {path}")
