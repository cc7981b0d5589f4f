"""A run's saved model with what a caller needs to feed it: image size, class names, dataset.

Loaded through ``pipeline.models.saving.load_model`` (Keras' safe mode on); everything
else comes from the run's typed record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from pipeline.errors import PipelineError
from pipeline.models.saving import load_model
from pipeline.runs.folder import BEST_MODEL, FINAL_MODEL, Run

MODEL_CHOICES = ("best", "final")


@dataclass(frozen=True)
class RunModel:
    """A run's model with the facts needed to feed it: raw RGB 0..255 at ``image_size``."""

    run: Run
    model: keras.Model
    model_path: Path
    image_size: int
    class_names: tuple[str, ...]
    data_dir: Path

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_run_model(run_path: str | Path, which: str = "best") -> RunModel:
    """Open a run and load its ``best`` (or ``final``) model, falling back to the other."""
    if which not in MODEL_CHOICES:
        raise PipelineError(f"`which` {which!r}: choose best or final")
    run = Run.open(run_path)
    record = run.record()
    model_path = run.model_path(which)
    return RunModel(
        run=run,
        model=_load_or_offer_the_other(run, model_path),
        model_path=model_path,
        image_size=record.image_size,
        class_names=tuple(record.class_names),
        data_dir=Path(record.data_dir),
    )


def _load_or_offer_the_other(run: Run, path: Path) -> keras.Model:
    """The model at ``path``; if it is damaged and the run's other model loads, say to use it."""
    try:
        return load_model(path)
    except PipelineError as error:
        other = run.file(FINAL_MODEL if path.name == BEST_MODEL else BEST_MODEL)
        if "permission denied" in str(error) or not other.is_file():
            raise
        try:
            load_model(other)
        except PipelineError:
            raise error from None
        which = "final" if other.name == FINAL_MODEL else "best"
        raise PipelineError(f"{path.name} of {run.path} is damaged; {other.name} is intact: use "
                            f"`which` {which} ({error})") from None


def class_index(class_names: tuple[str, ...], name: str) -> int:
    """Index of class ``name``, with an error listing the classes the run knows."""
    if name not in class_names:
        raise PipelineError(
            f"`class_name` {name!r}: this run's classes are {', '.join(class_names)}"
        )
    return class_names.index(name)
