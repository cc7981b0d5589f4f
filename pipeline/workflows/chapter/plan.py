"""What ``run`` will do: its config, and the plan decided from it, a preset and the data.

The plan is decided once, before anything trains: the steps, conv base, image size, epochs and
unfreezing come from what the user gave, else the preset, else the transfer-learning rule of thumb
for this many training images (``presets.rule_of_thumb``). ``pipeline.workflows.chapter.workflow``
carries it out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.training.options import TrainingOptions
from pipeline.workflows.chapter.presets import (
    EXTRACT,
    FINETUNE,
    TRAINING_STEPS,
    get_preset,
    parse_steps,
    rule_of_thumb,
)

DEFAULT_DATA = Path("data/cats_and_dogs_small")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # as run folders' names (runs.py)


@dataclass
class RunConfig:
    """Everything ``run`` depends on. None (or empty) means: the preset's value, else the
    workflow's default (the rule of thumb for ``steps`` and ``unfreeze``)."""

    data_dir: Path = DEFAULT_DATA
    source: Path | None = None  # photos to prepare ``data_dir`` from, when it is not prepared
    split_sizes: tuple[int, int, int] = (1000, 500, 500)  # per class, when preparing
    models_dir: Path = Path("models")
    run_name: str | None = None  # the parent folder; None: run-<preset or auto>-<dataset>
    preset: str | None = None
    steps: tuple[str, ...] = ()
    base: str | None = None
    architecture: str = "convnet"  # the from-scratch steps' model (pipeline.models.scratch)
    weights: str = "auto"
    image_size: int | None = None
    epochs: dict[str, int] = field(default_factory=dict)  # per training step
    unfreeze: str | None = None
    views: int | None = None  # finetune's cached augmented views per image (0: none)
    batch_size: int | None = None
    seed: int = 1337
    precision: str = "float32"
    strategy: str = "auto"  # devices of every training step (tf.distribute); batch size global
    report: bool = True


@dataclass(frozen=True)
class Plan:
    """What will run, decided once from the config, the preset and the data."""

    steps: tuple[str, ...]
    base: str | None
    image_size: int | None
    epochs: dict[str, int]
    unfreeze: str
    views: int | None  # None: finetune's default
    decided_by: str  # "preset cpu-quick", "steps/unfreeze given", "rule of thumb"
    reason: str


def default_run_name(config: RunConfig) -> str:
    """The same command names the same folder, so starting it again resumes it."""
    return f"run-{config.preset or 'auto'}-{Path(config.data_dir).name}"


def check_config(config: RunConfig) -> None:
    """Refuse a config that cannot run, before any data is prepared or trained."""
    if config.run_name is not None and not _NAME_OK.match(config.run_name):
        raise PipelineError(f"`run_name` {config.run_name!r}: use letters, digits, '.', '_' "
                            "and '-' only")
    if config.preset is not None:
        get_preset(config.preset)
    if config.steps:
        parse_steps(config.steps)
    for step, epochs in config.epochs.items():
        if step not in TRAINING_STEPS:
            raise PipelineError(f"`epochs`: {step!r} is not a training step; choose from "
                                f"{', '.join(TRAINING_STEPS)}")
        if epochs < 1:
            raise PipelineError(f"`epochs` of {step} must be at least 1, got {epochs}")
    from pipeline.models.scratch import architecture  # loads Keras, as every step will

    architecture(config.architecture)
    if config.views is not None and config.views < 0:
        raise PipelineError(f"`views` must be 0 or more, got {config.views}")
    # The options every step shares are checked as the steps will take them.
    TrainingOptions(batch_size=1 if config.batch_size is None else config.batch_size,
                    seed=config.seed,
                    precision=config.precision, strategy=config.strategy).validate()


def make_plan(config: RunConfig, train_images: int) -> Plan:
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
    elif config.unfreeze and FINETUNE not in steps:
        steps = parse_steps((*steps, FINETUNE))  # asking to unfreeze asks to fine-tune
    if FINETUNE in steps and EXTRACT not in steps:
        steps = parse_steps((*steps, EXTRACT))  # fine-tuning starts from the extract run
    epochs = dict(preset.epochs) if preset else {}
    epochs.update(config.epochs)
    return Plan(
        steps=steps, base=config.base or (preset.base if preset else None),
        image_size=config.image_size or (preset.image_size if preset else None),
        epochs={step: epochs[step] for step in steps if step in epochs},
        unfreeze=config.unfreeze or unfreeze,
        views=config.views if config.views is not None else (preset.views if preset else None),
        decided_by=decided_by, reason=reason,
    )
