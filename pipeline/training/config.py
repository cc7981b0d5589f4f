"""Helpers every workflow shares: its config's JSON form, seeding, the dataset's splits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras

from pipeline.data.manifest import SPLITS
from pipeline.errors import PipelineError


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


def splits_present(manifest: dict, data_dir: Path) -> list[str]:
    """The splits of a prepared dataset that hold images; train and validation must."""
    splits = [split for split in SPLITS if sum(manifest["counts"][split].values())]
    for needed in ("train", "validation"):
        if needed not in splits:
            raise PipelineError(f"{data_dir}: the {needed} split is empty; "
                                "re-run `python cli.py data prepare`")
    return splits
