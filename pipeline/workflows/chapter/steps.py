"""What each of ``run``'s steps trains with (its workflow config), and the digest that says
whether a step done before was made from the same inputs.

Kept apart from ``workflow`` (which carries the plan out) so the mapping from a plan to the
workflows' configs reads on its own: the preset's or rule of thumb's values, the user's
overrides, the whole-base recipe (``presets.WHOLE_BASE``) when the rule of thumb tries it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.models.drop_path_options import NO_DROP_PATH
from pipeline.models.layer_decay_options import NO_LAYER_DECAY
from pipeline.models.loss_options import NO_SMOOTHING
from pipeline.models.schedules import ScheduleOptions
from pipeline.training.config import config_to_dict
from pipeline.training.mixing_options import MIXING, NO_MIXING
from pipeline.training.options import TrainingOptions
from pipeline.workflows.chapter.plan import ChapterConfig, Plan
from pipeline.workflows.chapter.presets import (
    DEPENDS_ON,
    EPOCH_STEPS,
    STEP_ENSEMBLE,
    STEP_EXTRACT,
    STEP_EXTRACT_AUGMENT,
    STEP_EXTRACT_SECOND,
    STEP_FINETUNE,
    STEP_FINETUNE_SECOND,
    STEP_SCRATCH,
    STEP_SCRATCH_AUGMENT,
    WHOLE_BASE,
)
from pipeline.workflows.ensemble.config import EnsembleConfig
from pipeline.workflows.extract import config as extract_config
from pipeline.workflows.extract.config import ExtractConfig
from pipeline.workflows.finetune import config as finetune_config
from pipeline.workflows.finetune.config import FinetuneConfig
from pipeline.workflows.scratch.config import ScratchConfig

AUGMENTED_DROPOUT = 0.5  # the book's dropout for the augmented scratch convnet


def step_config(step: str, parent: Path, config: ChapterConfig, plan: Plan):
    """The workflow config that trains ``step`` into ``parent/<step>``.

    The learning rate and batch size are the workflow's own (``TRAINING_DEFAULTS``), filled in
    here as the steps' digests have always held them. ``mixup`` and ``cutmix`` reach only the
    steps that train on images (``mixing_steps``).
    """
    workflow_config = _step_config(step, parent, config, plan)
    training = getattr(workflow_config, "training", None)
    if training is None or not training.mixes or trains_on_images(workflow_config):
        return workflow_config
    return dataclasses.replace(workflow_config, training=dataclasses.replace(
        training, **dict.fromkeys(MIXING, NO_MIXING)))


def trains_on_images(workflow_config: Any) -> bool:
    """Whether a step's workflow config trains on batches of images, where mixup and CutMix
    apply (the others train on cached features or views)."""
    if isinstance(workflow_config, ScratchConfig):
        return True
    if isinstance(workflow_config, ExtractConfig):
        return extract_config.trains_on_images(workflow_config)
    if isinstance(workflow_config, FinetuneConfig):
        return finetune_config.trains_on_images(workflow_config)
    return False


def mixing_steps(parent: Path, config: ChapterConfig, plan: Plan) -> list[str]:
    """The planned steps that train with ``config``'s mixup and CutMix (none when both are 0)."""
    return [step for step in plan.steps
            if step in EPOCH_STEPS and step_config(step, parent, config, plan).training.mixes]


def _step_config(step: str, parent: Path, config: ChapterConfig, plan: Plan):
    from pipeline.models.scratch import architecture

    if step == STEP_ENSEMBLE:  # no training: the fine-tuned steps' models, averaged
        return EnsembleConfig(members=tuple(parent / member for member in DEPENDS_ON[step]),
                              models_dir=parent, run_name=step)
    workflow = {STEP_SCRATCH: ScratchConfig, STEP_SCRATCH_AUGMENT: ScratchConfig,
                STEP_EXTRACT: ExtractConfig, STEP_EXTRACT_AUGMENT: ExtractConfig,
                STEP_EXTRACT_SECOND: ExtractConfig, STEP_FINETUNE: FinetuneConfig,
                STEP_FINETUNE_SECOND: FinetuneConfig}[step]
    training = TrainingOptions(
        batch_size=config.batch_size, epochs=plan.epochs.get(step, TrainingOptions.epochs),
        seed=config.seed, precision=config.precision, strategy=config.strategy,
        class_weight=config.class_weight, label_smoothing=config.label_smoothing or NO_SMOOTHING,
        mixup=config.mixup, cutmix=config.cutmix,
    ).with_defaults(workflow.TRAINING_DEFAULTS)
    common = dict(models_dir=parent, run_name=step, training=training)
    features_dir = Path(config.models_dir) / "features"  # one cache for every run folder
    views = {"views": plan.views} if plan.views is not None else {}
    if step in (STEP_SCRATCH, STEP_SCRATCH_AUGMENT):
        # A preset's size is its conv base's: the scratch model keeps its own unless given.
        augment = step == STEP_SCRATCH_AUGMENT
        model = architecture(config.architecture)
        return ScratchConfig(data_dir=Path(config.data_dir), architecture=model.name,
                             image_size=config.image_size or model.image_size, augment=augment,
                             dropout=AUGMENTED_DROPOUT if augment else 0.0, **common)
    if step in (STEP_EXTRACT, STEP_EXTRACT_AUGMENT, STEP_EXTRACT_SECOND):
        augment = step == STEP_EXTRACT_AUGMENT
        base = plan.second_base if step == STEP_EXTRACT_SECOND else plan.base
        extra = {"base": base} if base else {}
        return ExtractConfig(data_dir=Path(config.data_dir), weights=config.weights,
                             image_size=plan.image_size, augment=augment,
                             features_dir=features_dir, **(views if augment else {}), **extra,
                             **common)
    extra = {"augment": plan.augment} if plan.augment is not None else {}
    if plan.keep_best:  # the rule of thumb's whole-base recipe, measured (presets.WHOLE_BASE)
        recipe = WHOLE_BASE
        smoothing = config.label_smoothing
        training = dataclasses.replace(
            training, optimizer=recipe.optimizer, learning_rate=recipe.learning_rate,
            epochs=plan.epochs.get(step, recipe.epochs),
            label_smoothing=recipe.label_smoothing if smoothing is None else smoothing)
        views = {"views": plan.views if plan.views is not None else recipe.views}
        # The warm-up must end before the last epoch: none when fewer epochs are asked for.
        warmup = recipe.warmup_epochs if training.epochs > recipe.warmup_epochs else 0.0
        extra["lr_schedule"] = ScheduleOptions(recipe.schedule, warmup)
        common["training"] = training
    extra["drop_path"] = config.drop_path
    (source,) = DEPENDS_ON[step]  # the extract step it fine-tunes
    return FinetuneConfig(source_run=parent / source, unfreeze=plan.unfreeze,
                          features_dir=features_dir, **views, **extra, **common)


def step_digest(workflow_config: Any, manifest: dict, depends_on: str | None = None, *,
                legacy: bool = False) -> str:
    """sha256 of what a step's result depends on: its config, the data, the step before.

    ``legacy``: as digested before ``augment`` and ``views`` of fine-tuning took the meaning
    they have in ``extract`` (``views`` 0 was "no augmentation"), so a step done then with
    what is the same training now is still found done.
    """
    from pipeline.data.manifest import manifest_checksum

    document = {"config": config_to_dict(workflow_config), "data": manifest_checksum(manifest),
                "depends_on": depends_on}
    training = document["config"].get("training", {})
    counts = set(manifest.get("counts", {}).get("train", {}).values())
    if training.get("class_weight") == "none" or len(counts) <= 1:
        # No weights: the same training as before the option existed, so the same digest.
        training.pop("class_weight", None)
    for added_later in ("label_smoothing", *MIXING):
        if not training.get(added_later):
            training.pop(added_later, None)  # the training before the option existed
    if training.get("layer_decay", NO_LAYER_DECAY) == NO_LAYER_DECAY:
        training.pop("layer_decay", None)
    for field_name, off in (("start_size", None), ("drop_path", NO_DROP_PATH)):
        if field_name in document["config"] and document["config"][field_name] == off:
            document["config"].pop(field_name)  # the option off: as before it existed
    if legacy and isinstance(workflow_config, FinetuneConfig):
        document["config"].update(_old_finetune_fields(workflow_config))
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _old_finetune_fields(config: FinetuneConfig) -> dict[str, Any]:
    """Fine-tuning's ``augment`` and ``views`` in their old meaning: ``views`` cached views
    (0: no augmentation), ``augment`` the exact path."""
    if not config.augment:
        return {"augment": False, "views": 0}
    return {"augment": config.views == 0, "views": config.views}
