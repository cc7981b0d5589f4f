"""The extract run fine-tuning starts from: opened, checked, and its model loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from pipeline.errors import PipelineError
from pipeline.models.bases import ConvBase, get_base
from pipeline.models.saving import load_model
from pipeline.models.transfer import INPUT_NAME
from pipeline.runs.folder import EXTRACT, Run, RunRecord


@dataclass(frozen=True)
class ExtractSource:
    """What fine-tuning takes over from the extract run."""

    run: Run
    record: RunRecord
    base: ConvBase
    data_dir: Path

    @property
    def num_classes(self) -> int:
        return len(self.record.class_names)


def open_extract_run(path: Path, data_dir: Path | None = None) -> ExtractSource:
    """The extract run at ``path`` and what it was trained with; refuses other kinds of run."""
    run = Run.open(path)
    record = run.record()
    if record.kind != EXTRACT or record.base is None:
        raise PipelineError(
            f"{run.path} is a {record.kind!r} run; finetune starts from an extract run "
            "(make one with `python cli.py extract`)"
        )
    return ExtractSource(run=run, record=record, base=get_base(record.base),
                         data_dir=Path(data_dir or record.data_dir))


def load_image_model(source: ExtractSource) -> keras.Model:
    """The extract run's best model (final if there is no best), checked to take images."""
    path = source.run.model_path("best")
    model = load_model(path)  # recompiled by the caller
    size = source.record.image_size
    expected = (None, size, size, 3)
    names = [layer.name for layer in model.layers]
    any_size = (None, None, None, 3)  # a multi-size (SPP-net) extract run
    if tuple(model.input.shape) not in (expected, any_size) or INPUT_NAME not in names:
        raise PipelineError(
            f"{path}: takes {tuple(model.input.shape)}, not images {expected}; the extract run "
            "did not finish saving, run it again"
        )
    return model
