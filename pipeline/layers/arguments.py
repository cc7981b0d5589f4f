"""Argument checks the custom layers share."""

from __future__ import annotations

import keras


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
