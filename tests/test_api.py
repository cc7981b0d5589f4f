"""``import pipeline``: the entry points a notebook user finds, without importing TensorFlow."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ("prepare", "train", "extract", "finetune", "evaluate", "predict", "export",
                "run_chapter", "load_run_model")
CONFIGS = ("PrepareConfig", "ScratchConfig", "ExtractConfig", "FinetuneConfig", "ChapterConfig",
           "TrainingOptions", "AugmentConfig")


def test_import_pipeline_imports_no_tensorflow():
    """The command line's --help imports ``pipeline``: it must stay instant."""
    code = ("import sys, pipeline\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'jax', 'torch'))\n"
            "print(heavy)\n"
            "assert 'train' not in vars(pipeline), 'entry points must be imported on first use'\n"
            "sys.exit(1 if heavy else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"import pipeline imported {done.stdout.strip()}"
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_defining_module():
    assert set(ENTRY_POINTS) | set(CONFIGS) | {"Run", "PipelineError", "__version__"} <= set(
        pipeline.__all__)
    for name in pipeline.__all__:
        value = getattr(pipeline, name)
        assert value is not None, name
        if name in pipeline._LAZY:
            module, attribute = pipeline._LAZY[name]
            assert value is getattr(importlib.import_module(module), attribute), name
            assert value.__module__ == module, (
                f"{name} is defined in {value.__module__} now: update pipeline._LAZY")
    assert set(pipeline.__all__) <= set(dir(pipeline))


def test_entry_points_are_functions_and_configs_dataclasses():
    for name in ENTRY_POINTS:
        assert inspect.isfunction(getattr(pipeline, name)), name
        assert inspect.getdoc(getattr(pipeline, name)), f"{name} has no docstring"
    for name in CONFIGS:
        assert dataclasses.is_dataclass(getattr(pipeline, name)), name
    # Each workflow takes its own config as the first argument.
    for function, config in (("train", "ScratchConfig"), ("extract", "ExtractConfig"),
                             ("finetune", "FinetuneConfig"), ("run_chapter", "ChapterConfig"),
                             ("prepare", "PrepareConfig")):
        first = next(iter(inspect.signature(getattr(pipeline, function)).parameters.values()))
        assert first.annotation in (config, getattr(pipeline, config)), function


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        pipeline.trian  # noqa: B018
    assert not hasattr(pipeline, "does_not_exist")


def test_version_and_error_are_defined_eagerly():
    assert "PipelineError" not in pipeline._LAZY and "__version__" not in pipeline._LAZY
    assert pipeline.__version__[0].isdigit()
    assert pipeline.PipelineError is importlib.import_module("pipeline.errors").PipelineError
