"""Argument checks the custom layers share; each names the argument in backticks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def standardize_data_format(data_format: str | None) -> str:
    """``channels_last`` or ``channels_first``; None means Keras' configured default."""
    if data_format is None:
        return keras.config.image_data_format()
    value = str(data_format).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first', "
            f"got data_format={data_format!r}."
        )
    return value


def int_at_least(value: Any, name: str, minimum: int) -> int:
    """`value` as an int, refused unless it is an int (not a bool) >= `minimum`."""
    if not _is_int(value) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"`{name}` must be {kind}, got {name}={value!r}.")
    return int(value)


def positive_float(value: Any, name: str) -> float:
    """`value` as a float, refused unless it is a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"`{name}` must be a positive number, got {name}={value!r}.")
    return float(value)


def positive_int_pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints, all positive, as a pair (like Keras' `kernel_size`)."""
    values = (value, value) if _is_int(value) else value
    if (
        not isinstance(values, Sequence)
        or len(values) != 2
        or any(not _is_int(v) or v < 1 for v in values)
    ):
        raise ValueError(
            f"`{name}` must be a positive int or a pair of positive ints, got {name}={value!r}."
        )
    return int(values[0]), int(values[1])


def positive_int_tuple(value: Any, name: str) -> tuple[int, ...]:
    """A non-empty sequence of positive ints as a tuple (SPP's pyramid `levels`)."""
    if (
        _is_int(value)
        or not isinstance(value, Sequence)
        or len(value) == 0
        or any(not _is_int(v) or v < 1 for v in value)
    ):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of positive ints, got {name}={value!r}."
        )
    return tuple(int(v) for v in value)
