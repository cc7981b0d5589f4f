"""What ``run`` will do: its config, and the plan decided from it, a preset and the data.

The plan is decided once, before anything trains: the steps, conv base, image size, epochs and
unfreezing come from what the user gave, else the preset, else the transfer-learning rule of thumb
for this many training images (``presets.rule_of_thumb``). ``pipeline.workflows.chapter.workflow``
carries it out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.defaults import DATA_ROOT, DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR, DEFAULT_SEED
from pipeline.data.sizes import check_image_size
from pipeline.errors import PipelineError
from pipeline.models.drop_path_options import NO_DROP_PATH, check_drop_path
from pipeline.models.loss_options import NO_SMOOTHING
from pipeline.system.paths import check_writable_folder
from pipeline.training.mixing_options import NO_MIXING
from pipeline.training.options import DEFAULT_CLASS_WEIGHT, TrainingOptions
from pipeline.workflows.chapter.presets import (
    DEFAULT_BUDGET_SECONDS,
    EPOCH_STEPS,
    RECOMMENDED_BASE,
    STEP_EXTRACT_SECOND,
    STEP_FINETUNE,
    get_preset,
    parse_steps,
    rule_of_thumb,
    second_base_for,
)

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # as run folders' names (runs.py)


@dataclass
class ChapterConfig:
    """Everything ``run`` depends on. None (or empty) means: the preset's value, else the
    workflow's default (the rule of thumb for ``steps`` and ``unfreeze``).

    ``augment`` and ``views`` mean what they mean for ``extract`` and ``finetune``:
    augmentation on or off (fine-tuning's; the ``-augment`` steps always augment, the
    others never), and the cached augmented views per training image of every step that
    augments a pretrained base (``extract-augment``, ``finetune``), 0 on the fly.
    """

    data_dir: Path | None = None  # None: data/<source's dataset name>, else DEFAULT_DATA_DIR
    source: Path | None = None  # photos to prepare ``data_dir`` from, when it is not prepared
    # When preparing: fractions of each class ("0.8,0.1,0.1"), or photos per class; neither:
    # ``data prepare``'s default for the source's layout.
    split: str | tuple[float, float, float] | None = None
    split_sizes: tuple[int, int, int] | None = None
    # When preparing a flat folder: the CSV of its labels (None: the folder's only CSV) and
    # its "FILE,LABEL" columns (None: from its header), as ``data prepare`` takes them.
    labels: Path | None = None
    labels_columns: str | None = None
    models_dir: Path = DEFAULT_MODELS_DIR
    run_name: str | None = None  # the parent folder; None: run-<preset or auto>-<dataset>
    preset: str | None = None
    steps: tuple[str, ...] = ()
    base: str | None = None
    # The second base of the steps extract-2 and finetune-2 (None: presets.second_base_for).
    second_base: str | None = None
    architecture: str = "convnet"  # the from-scratch steps' model (pipeline.models.scratch)
    weights: str = "auto"
    image_size: int | None = None
    epochs: dict[str, int] = field(default_factory=dict)  # per training step
    unfreeze: str | None = None
    augment: bool | None = None  # fine-tuning with augmentation (None: the preset's, else on)
    views: int | None = None  # cached augmented views per image (0: on the fly)
    batch_size: int | None = None  # None: each workflow's
    seed: int = DEFAULT_SEED
    precision: str = "auto"  # mixed where the hardware has it natively (training.precision)
    class_weight: str = DEFAULT_CLASS_WEIGHT  # none | balanced, every training step's
    # Every training step's label smoothing; None: the whole-base recipe's for the rule of
    # thumb's fine-tuning (presets.WHOLE_BASE), none elsewhere.
    label_smoothing: float | None = None
    # The fine-tuning steps' drop path (stochastic depth; 0: off, as measured for the
    # whole-base recipe on Oxford 17: presets.WholeBaseRecipe).
    drop_path: float = NO_DROP_PATH
    # Mixup and CutMix alphas (0: off) of the steps that train on images: the scratch steps,
    # and extract-augment and the fine-tuning steps with `views` 0 (the whole-base recipe's);
    # the steps on cached features or views train without.
    mixup: float = NO_MIXING
    cutmix: float = NO_MIXING
    strategy: str = "auto"  # devices of every training step (tf.distribute); batch size global
    report: bool = True
    # Seconds for the training steps: training stops before an epoch would pass it, a step
    # not begun by then is skipped; test evaluation and the report follow. None: 15 minutes
    # when the rule of thumb tries fine-tuning the whole base, else no limit.
    budget: float | None = None
    # The folder (or a step's run, or cached work) is held by a process the user knows is
    # dead, though its pid looks alive: take it over (``processes.taking_over``).
    take_over: bool = False


@dataclass(frozen=True)
class Plan:
    """What will run, decided once from the config, the preset and the data."""

    steps: tuple[str, ...]
    base: str | None
    image_size: int | None
    epochs: dict[str, int]
    unfreeze: str
    augment: bool | None  # fine-tuning's augmentation; None: finetune's default
    views: int | None  # None: the workflows' default
    decided_by: str  # "preset cpu-quick", "steps/unfreeze given", "rule of thumb"
    reason: str
    # The rule of thumb on a small dataset, and the preset ``best`` on any, try fine-tuning the
    # whole base (``presets.WHOLE_BASE``) and keep the step that validates best.
    keep_best: bool = False
    second_base: str | None = None  # the base of extract-2 and finetune-2, when planned


def with_data_dir(config: ChapterConfig) -> ChapterConfig:
    """``config`` with its dataset folder decided: the one given; else, with ``source``,
    ``data/<the name data prepare gives it>`` (the source folder's, or cats_and_dogs_small
    for Kaggle's photos), so ``run --source PATH`` alone prepares and finds it; else the
    default dataset."""
    if config.data_dir is not None:
        return config
    if config.source is None:
        return dataclasses.replace(config, data_dir=DEFAULT_DATA_DIR)
    from pipeline.data.naming import default_dataset_name
    from pipeline.data.sources import scan_photos

    name = default_dataset_name(scan_photos(Path(config.source), config.labels,
                                            config.labels_columns))
    return dataclasses.replace(config, data_dir=DATA_ROOT / name)


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """``10m``, ``1h``, ``90s`` or ``600`` (seconds) in seconds."""
    cleaned = str(text).strip().lower()
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned[-1:] in _UNITS else (cleaned, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise PipelineError(f"`budget` {text!r}: give a time such as 10m, 1h or 900s")
    return seconds


def format_duration(seconds: float) -> str:
    """``parse_duration``'s inverse, for help and messages: 15m, 90s."""
    return f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"


def default_run_name(config: ChapterConfig) -> str:
    """The same command names the same folder, so starting it again resumes it."""
    return f"chapter-{config.preset or 'auto'}-{Path(with_data_dir(config).data_dir).name}"


def check_config(config: ChapterConfig) -> None:
    """Refuse a config that cannot run, before any data is prepared or trained."""
    check_writable_folder(config.models_dir, "models_dir")
    check_image_size(config.image_size)
    if config.run_name is not None and not _NAME_OK.match(config.run_name):
        raise PipelineError(f"`run_name` {config.run_name!r}: use letters, digits, '.', '_' "
                            "and '-' only")
    if config.preset is not None:
        get_preset(config.preset)
    if config.steps:
        parse_steps(config.steps)
    for step, epochs in config.epochs.items():
        if step not in EPOCH_STEPS:
            raise PipelineError(f"`epochs`: {step!r} is not a training step; choose from "
                                f"{', '.join(EPOCH_STEPS)}")
        if epochs < 1:
            raise PipelineError(f"`epochs` of {step} must be at least 1, got {epochs}")
    from pipeline.models.scratch import architecture  # loads Keras, as every step will

    architecture(config.architecture)
    if config.views is not None and config.views < 0:
        raise PipelineError(f"`views` must be 0 or more, got {config.views}")
    if config.budget is not None and not 0 < config.budget < float("inf"):
        raise PipelineError(f"`budget` must be a positive number of seconds (None: the "
                            f"default), got {config.budget}")
    _check_split_to_prepare(config)
    # The options every step shares are checked as the steps will take them.
    TrainingOptions(batch_size=config.batch_size, seed=config.seed,
                    precision=config.precision, strategy=config.strategy,
                    class_weight=config.class_weight,
                    label_smoothing=config.label_smoothing or NO_SMOOTHING,
                    mixup=config.mixup, cutmix=config.cutmix).validate()
    check_drop_path(config.drop_path)


def will_prepare(config: ChapterConfig) -> bool:
    """Whether ``run`` prepares the dataset from ``source`` (it is not prepared yet)."""
    return config.source is not None and not (Path(config.data_dir) / "manifest.json").is_file()


def _check_split_to_prepare(config: ChapterConfig) -> None:
    """Refuse, before preparing anything, a split that leaves validation empty: every
    training step picks its best epoch on the validation split."""
    if not will_prepare(config):
        return
    if config.split_sizes is not None and config.split_sizes[1] == 0:
        field, shown = "split_sizes", " ".join(map(str, config.split_sizes))
    elif config.split is not None and config.split_sizes is None:
        from pipeline.data.splits import parse_fractions

        if parse_fractions(config.split)["validation"] > 0:
            return
        field = "split"
        shown = config.split if isinstance(config.split, str) else ",".join(
            map(str, config.split))
    else:
        return
    raise PipelineError(f"`{field}` {shown}: no validation photos, but every training step "
                        "needs a validation split (it keeps the best epoch on it); give "
                        f"`{field}` a validation share above 0")


def run_budget(config: ChapterConfig, plan: Plan) -> float | None:
    """The seconds the run may take: the user's, else ``DEFAULT_BUDGET_SECONDS`` when the rule
    of thumb tries fine-tuning the whole base; None: no limit (presets, steps given)."""
    if config.budget is not None:
        return config.budget
    return DEFAULT_BUDGET_SECONDS if plan.keep_best else None


def make_plan(config: ChapterConfig, train_images: int) -> Plan:
    """The steps, base, size, epochs and unfreezing: given > preset > rule of thumb."""
    preset = get_preset(config.preset) if config.preset else None
    choice = rule_of_thumb(train_images)
    if preset is not None:
        steps, unfreeze = preset.steps, preset.unfreeze
        decided_by, reason = f"preset {preset.name}", preset.description
    elif config.steps or config.unfreeze:
        steps, unfreeze = choice.steps, choice.unfreeze or "top"
        decided_by, reason = "options given", "the steps and unfreezing asked for"
    else:
        steps, unfreeze = choice.steps, choice.unfreeze or "top"
        decided_by, reason = "rule of thumb", choice.reason
    if config.steps:
        steps = parse_steps(config.steps)
    elif config.unfreeze and STEP_FINETUNE not in steps:
        steps = parse_steps((*steps, STEP_FINETUNE))  # asking to unfreeze asks to fine-tune
    epochs = dict(preset.epochs) if preset else {}
    epochs.update(config.epochs)
    base = config.base or (preset.base if preset else RECOMMENDED_BASE)
    second = (config.second_base or second_base_for(base)) if STEP_EXTRACT_SECOND in steps \
        else None
    return Plan(
        steps=steps, base=base, second_base=second,
        image_size=config.image_size or (preset.image_size if preset else None),
        epochs={step: epochs[step] for step in steps if step in epochs},
        unfreeze=config.unfreeze or unfreeze,
        augment=_given_or_preset(config.augment, preset.augment if preset else None),
        views=_given_or_preset(config.views, preset.views if preset else None),
        decided_by=decided_by, reason=reason,
        keep_best=preset.keep_best if preset is not None
        else decided_by == "rule of thumb" and choice.keep_best,
    )


def _given_or_preset(given, preset):
    """What the user gave, else the preset's (None: the workflow's default)."""
    return given if given is not None else preset
