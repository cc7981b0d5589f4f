"""The command line's main group: ``small-data``, ``python -m pipeline`` and ``python cli.py``.

Only the group and the registration of its commands live here; the commands are in
``pipeline.commands`` (one module per group of commands). Each command parses its options
into its workflow's config, calls one ``pipeline`` function and prints its result's summary;
TensorFlow is imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import os

import click
import cloup

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter quiet

from pipeline.commands.base import CONTEXT, Commands
from pipeline.commands.chapter import report, run
from pipeline.commands.data import data
from pipeline.commands.evaluation import evaluate, export, predict
from pipeline.commands.tools import plot, summary, visualize
from pipeline.commands.training import ensemble, extract, finetune, lr_find, train


@cloup.group("small-data", cls=Commands, context_settings=CONTEXT, examples=(
    "python cli.py run --source ~/photos            # your photos, one sub-folder per class",
    "python cli.py run --source ~/Downloads/train --preset cpu-quick   # the book's chapter",
    "python cli.py data prepare --source ~/Downloads/train",
    "python cli.py train --augment --dropout 0.5 --epochs 100          # from scratch",
    "python cli.py plot models/<run>                                   # where does it overfit?",
    "python cli.py extract                                             # pretrained VGG16 features",
    "python cli.py finetune models/<extract-run>                       # unfreeze block5",
    "python cli.py evaluate models/<finetune-run>                      # test metrics, mistakes",
))
@cloup.option_group(
    "General",
    cloup.option("--verbose", is_flag=True,
                 help="Show TensorFlow's start-up lines on stderr (also: SMALL_DATA_VERBOSE=1)."),
    click.version_option(package_name="small-data-keras", message="%(version)s"),
)
def main(verbose: bool) -> None:
    """Deep learning on small image datasets with Keras: a folder of labelled photos in, a model
    you can serve out (the cats-vs-dogs chapter of the book, done properly, included).

    The whole chapter is one command (`run`: prepare, train, evaluate, report; resumable),
    or go step by step as in the examples. Datasets live under data/, runs (configuration,
    history, checkpoints, metrics, plots) under models/<run>/. `COMMAND --help` shows each
    command's options and examples. TensorFlow's start-up lines are kept off the console
    unless --verbose is given.
    """
    from pipeline.system.console import VERBOSE_VARIABLE, quiet_startup_lines

    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
    else:
        quiet_startup_lines()


main.section("The whole chapter", run, report)
main.section("Train", train, extract, finetune, ensemble, lr_find, plot)
main.section("Use a trained run", evaluate, predict, export)
main.section("Data and models", data, visualize, summary)
