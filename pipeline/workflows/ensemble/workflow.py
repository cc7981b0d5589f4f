"""An ensemble run: the mean of several runs' predicted probabilities, saved as one model.

The members are loaded as they were saved (each with its own preprocessing inside), put side
by side under one input (``pipeline.models.ensemble``), and the result is validated on the
validation split of their dataset, so the ensemble is compared with its members on the same
photos it could be chosen by. The run folder is like any other: ``best.keras``, a record
(kind ``ensemble``, its members in ``config``) and ``metrics.json``; ``evaluate``,
``predict``, ``export`` and ``report`` take it as they take a training run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.data.dataset import load_split
from pipeline.data.manifest import read_manifest
from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import mean_loss, predict_split
from pipeline.evaluation.metrics import class_probabilities
from pipeline.evaluation.saved_model import MODEL_CHOICES, RunModel, load_run_model
from pipeline.models.ensemble import MIN_MEMBERS, average_of
from pipeline.models.saving import save_model
from pipeline.runs.folder import BEST_MODEL, Run
from pipeline.runs.record import COMPLETED, RunRecord
from pipeline.training.config import config_to_dict
from pipeline.workflows.ensemble.config import EnsembleConfig

KIND = "ensemble"
VALIDATION = "validation"


def build_ensemble(config: EnsembleConfig, verbose: bool = True) -> Run:
    """Average the runs of ``config.members`` into one model in a new run folder.

    Refused before any folder is made: fewer than two members, a member that is not a
    completed run, or members of different classes.
    """
    members = _load_members(config)
    first = members[0]
    image_size = max(member.image_size for member in members)
    data_dir = first.data_dir
    if not data_dir.is_dir():
        raise PipelineError(f"{data_dir}: the dataset of {first.run.path} is not there; the "
                            "ensemble is validated on it")
    counts = _counts(data_dir)
    run = Run.create(Path(config.models_dir), KIND, config.run_name)
    record = RunRecord(
        kind=KIND, data_dir=str(data_dir), class_names=list(first.class_names),
        image_size=image_size, config=config_to_dict(_resolved(config)),
        base="+".join(_base_name(member) for member in members),
        counts=counts,
    )
    run.write_record(record)
    names = [f"member_{i}_{member.run.name}" for i, member in enumerate(members)]
    model = average_of([member.model for member in members], image_size, names)
    save_model(model, run.file(BEST_MODEL))
    metrics = None if not counts.get(VALIDATION) else _validate(
        model, data_dir, image_size, first.class_names, config.batch_size)
    if metrics is not None:
        run.write_metrics(VALIDATION, metrics)
    # Recorded, so the report need not load every member again to count them.
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    run.finish(COMPLETED, trainable_parameters=trainable)
    if verbose:
        shown = "no validation split" if metrics is None else \
            f"validation accuracy {metrics['accuracy']:.1%}"
        print(f"ensemble of {len(members)} runs ({record.base}) at {image_size} px: {shown}; "
              f"{run.path}")
    return run


def _load_members(config: EnsembleConfig) -> list[RunModel]:
    """Each member's model, checked: completed, and all of the same classes."""
    if config.which not in MODEL_CHOICES:
        raise PipelineError(f"`which` {config.which!r}: choose best or final")
    paths = [Path(path) for path in config.members]
    if len(paths) < MIN_MEMBERS:
        raise PipelineError(f"`members`: an ensemble needs at least {MIN_MEMBERS} runs, got "
                            f"{len(paths)}")
    if len({path.resolve() for path in paths}) != len(paths):
        raise PipelineError("`members`: a run is named twice; name each run once")
    members = []
    for path in paths:
        run = Run.open(path, warn=False)
        if run.record().status != COMPLETED:
            raise PipelineError(f"{path}: the run did not complete ({run.record().status}); "
                                "finish it (run the same command again) or leave it out")
        members.append(load_run_model(path, config.which))
    for member in members[1:]:
        if member.class_names != members[0].class_names:
            raise PipelineError(
                f"{member.run.path}: classes {list(member.class_names)} differ from "
                f"{members[0].run.path}'s {list(members[0].class_names)}; average runs of "
                "the same dataset")
    return members


def _validate(model, data_dir: Path, image_size: int, class_names: tuple[str, ...],
              batch_size: int) -> dict[str, float]:
    """Accuracy and loss on the validation split."""
    data = load_split(data_dir, VALIDATION, image_size, batch_size, cache=False)
    if data.class_names != class_names:
        raise PipelineError(f"{data_dir}: classes {list(data.class_names)} differ from the "
                            f"runs' {list(class_names)}")
    labels, outputs = predict_split(model, data.dataset)
    predicted = class_probabilities(outputs).argmax(axis=1)
    return {"accuracy": float(np.mean(predicted == labels)),
            "loss": mean_loss(labels, outputs, len(class_names))}


def _counts(data_dir: Path) -> dict[str, int]:
    """Images per split of the prepared dataset (its manifest)."""
    manifest = read_manifest(data_dir)
    return {split: sum(per_class.values())
            for split, per_class in manifest.get("counts", {}).items()}


def _base_name(member: RunModel) -> str:
    record = member.run.record()
    return record.base or record.config.get("architecture") or record.kind


def _resolved(config: EnsembleConfig) -> EnsembleConfig:
    """``config`` with its members' absolute paths: the record names them wherever it is read."""
    return replace(config, members=tuple(Path(path).resolve() for path in config.members))
