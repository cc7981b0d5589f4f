"""Deep learning on small image datasets with Keras: the Python API of ``python cli.py``.

Each command is one function taking one config (a dataclass whose fields are the command's
options, with the same defaults), and returns what it made:

    prepare(PrepareConfig)      a train/validation/test split of a folder of photos
    train(ScratchConfig)        a small convnet from scratch                  -> Run
    extract(ExtractConfig)      a head on a frozen pretrained conv base       -> Run
    finetune(FinetuneConfig)    the top of an extract run's base unfrozen     -> Run
    ensemble(EnsembleConfig)    several runs' predictions averaged, one model -> Run
    evaluate(run_path, split)   metrics, confusion matrix, worst mistakes     -> Evaluation
    predict(run_path, inputs)   a class and probability per image file        -> [Prediction]
    export(model, output, fmt)  a SavedModel, TFLite or ONNX file for serving
    run_chapter(ChapterConfig)  the whole chapter, resumable, with its report (``run``)

with ``TrainingOptions`` (optimizer, rate, batches, epochs, seed, precision, devices),
``AugmentConfig``, ``Run`` (one training folder: ``Run.open(path).record()``) and
``load_run_model`` (a run's saved model, e.g. for ``export``). For example::

    from pathlib import Path
    import pipeline
    config = pipeline.ExtractConfig(data_dir=Path("data/flowers"), base="efficientnet_lite1")
    run = pipeline.extract(config)                          # models/extract-<date>-<time>/
    print(pipeline.evaluate(run.path, "test").summary())    # and predict(run.path, [photo])

A user mistake raises ``PipelineError`` with one line naming the field and what to do.
``import pipeline`` does not import TensorFlow: each name above is imported on first use
(PEP 562), so the command line's ``--help`` stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

from pipeline.errors import PipelineError

__version__ = "0.1.0"

# Public name -> (module that defines it, its name there). Resolved on first access only.
_LAZY: dict[str, tuple[str, str]] = {
    "prepare": ("pipeline.data.prepare", "prepare_dataset"),
    "PrepareConfig": ("pipeline.data.prepare", "PrepareConfig"),
    "train": ("pipeline.workflows.scratch.workflow", "train_scratch"),
    "ScratchConfig": ("pipeline.workflows.scratch.config", "ScratchConfig"),
    "extract": ("pipeline.workflows.extract.workflow", "run_extract"),
    "ExtractConfig": ("pipeline.workflows.extract.config", "ExtractConfig"),
    "finetune": ("pipeline.workflows.finetune.workflow", "run_finetune"),
    "FinetuneConfig": ("pipeline.workflows.finetune.config", "FinetuneConfig"),
    "ensemble": ("pipeline.workflows.ensemble.workflow", "build_ensemble"),
    "EnsembleConfig": ("pipeline.workflows.ensemble.config", "EnsembleConfig"),
    "evaluate": ("pipeline.evaluation.evaluate", "evaluate_run"),
    "predict": ("pipeline.evaluation.predict", "predict_paths"),
    "export": ("pipeline.evaluation.export", "export_model"),
    "load_run_model": ("pipeline.evaluation.saved_model", "load_run_model"),
    "run_chapter": ("pipeline.workflows.chapter.workflow", "run_chapter"),
    "ChapterConfig": ("pipeline.workflows.chapter.plan", "ChapterConfig"),
    "TrainingOptions": ("pipeline.training.options", "TrainingOptions"),
    "AugmentConfig": ("pipeline.data.augment_options", "AugmentConfig"),
    "Run": ("pipeline.runs.folder", "Run"),
}

__all__ = ["PipelineError", "__version__", *_LAZY]  # the lazy names resolve in __getattr__


def __getattr__(name: str) -> Any:
    """Import the module behind ``name`` on first use and keep the object here."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
