"""Helpers every workflow configuration shares: JSON form and reproducible seeding."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras

from pipeline.data.augment import AugmentConfig
from pipeline.errors import PipelineError
from pipeline.models.classifier import make_optimizer


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config (nested ones too) as plain JSON-ready values; paths become strings."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend so a run can be repeated."""
    keras.utils.set_random_seed(seed)


def check_training_options(
    optimizer: str,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    augmentation: AugmentConfig | None = None,
) -> None:
    """Refuse training options every workflow shares, before any expensive step."""
    make_optimizer(optimizer, learning_rate)
    if epochs < 1:
        raise PipelineError(f"--epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise PipelineError(f"--batch-size must be at least 1, got {batch_size}")
    if augmentation is not None:
        augmentation.validate()
