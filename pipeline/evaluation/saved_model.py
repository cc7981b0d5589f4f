"""Load a run's saved model the safe way, with what a caller needs to feed it.

Models are loaded with Keras' safe mode on: a ``.keras`` file can never run Python code
it carries (a ``Lambda`` layer, say) — such a file is refused with a clear message.
Our own layers are registered first (importing their modules), so models using them load.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras

from pipeline.errors import PipelineError
from pipeline.runs import Run

# Modules whose import registers custom layers (package "pipeline"); missing ones are skipped.
_REGISTERING_MODULES = ("pipeline.data.augment", "pipeline.data.pca_color")
_REGISTERING_PACKAGES = ("pipeline.models", "pipeline.layers")

MODEL_CHOICES = ("best", "final")


def register_custom_objects() -> None:
    """Import every module that registers a serializable layer, so saved models find them."""
    for name in _REGISTERING_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for package_name in _REGISTERING_PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
            with contextlib.suppress(ImportError):
                importlib.import_module(module.name)


def load_model_file(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file with safe mode on (uncompiled: we only run it forward)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: no such model file")
    register_custom_objects()
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except ValueError as error:
        if "safe_mode" in str(error) or "arbitrary code" in str(error):
            raise PipelineError(
                f"{path}: refused to load, the model holds Python code (e.g. a Lambda layer) "
                "and Keras safe mode is on; rebuild the model without such layers"
            ) from error
        raise PipelineError(f"{path}: cannot load the model ({_first_line(error)})") from error
    except (OSError, TypeError, KeyError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{path}: cannot load the model ({_first_line(error)})") from error


@dataclass(frozen=True)
class RunModel:
    """A run's model with the facts needed to feed it: raw RGB 0..255 at ``image_size``."""

    run: Run
    model: keras.Model
    model_path: Path
    image_size: int
    class_names: tuple[str, ...]
    data_dir: Path | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_run_model(run_path: str | Path, which: str = "best") -> RunModel:
    """Open a run and load its ``best`` (or ``final``) model, falling back to the other."""
    if which not in MODEL_CHOICES:
        raise PipelineError(f"--model {which!r}: choose best or final")
    run = Run.open(run_path)
    document = run.read_config()
    settings = document.get("config") or {}
    model_path = run.model_path(which)
    model = load_model_file(model_path)
    image_size = (settings.get("image_size") or document.get("image_size")
                  or _square_input_size(model))
    if image_size is None:
        raise PipelineError(
            f"{run.file('config.json')}: no image_size, and the model does not fix one"
        )
    class_names = tuple(document.get("class_names") or _placeholder_class_names(model))
    # A finetune run leaves its own data_dir unset (it uses its extract run's) and records
    # the dataset it used at the top level.
    data_dir = settings.get("data_dir") or document.get("data_dir")
    return RunModel(
        run=run,
        model=model,
        model_path=model_path,
        image_size=int(image_size),
        class_names=class_names,
        data_dir=Path(data_dir) if data_dir else None,
    )


def class_index(class_names: tuple[str, ...], name: str) -> int:
    """Index of class ``name``, with an error listing the classes the run knows."""
    if name not in class_names:
        raise PipelineError(f"--class {name!r}: this run's classes are {', '.join(class_names)}")
    return class_names.index(name)


def _square_input_size(model: keras.Model) -> int | None:
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2]:
        return int(shape[1])
    return None


def _placeholder_class_names(model: keras.Model) -> list[str]:
    units = model.output_shape[-1]
    return [f"class_{i}" for i in range(2 if units == 1 else units)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
