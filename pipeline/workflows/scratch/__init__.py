"""Training a small convnet from scratch: ``config`` (``ScratchConfig``, light) and
``workflow.train_scratch``. Both are importable from here; ``train_scratch`` is imported on
first use, so reading the config loads no TensorFlow.
"""

from __future__ import annotations

from typing import Any

from pipeline.workflows.scratch.config import ScratchConfig

__all__ = ["ScratchConfig", "train_scratch"]


def __getattr__(name: str) -> Any:
    if name == "train_scratch":
        from pipeline.workflows.scratch.workflow import train_scratch

        return train_scratch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
