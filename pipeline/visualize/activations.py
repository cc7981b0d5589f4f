"""Intermediate activations: what each convolution and pooling layer makes of one image.

One PNG per layer, a grid of its channels (feature maps), each channel normalised on its
own as in Chollet's book, so weak channels stay visible; an all-zero channel (a ReLU that
never fires on this image) shows as flat dark purple.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.data.image_file import load_image_array
from pipeline.errors import PipelineError
from pipeline.evaluation.saved_model import load_run_model
from pipeline.system.paths import output_folder
from pipeline.visualize.model_layers import feature_map_layers, find_layer, outputs_model
from pipeline.visualize.mosaic import save_mosaic, tile


def layer_activations(model, image: np.ndarray, layer_names: Sequence[str] | None = None):
    """``{layer name: (h, w, channels) array}`` for one raw image (S, S, 3) in 0..255.

    Default layers: every convolution and pooling layer, input to output.
    """
    if layer_names:
        layers = [find_layer(model, name, "layer_names") for name in layer_names]
        for layer in layers:
            if len(layer.output.shape) != 4:
                raise PipelineError(
                    f"`layer_names` {layer.name!r} outputs shape {tuple(layer.output.shape)}, "
                    "not feature maps; choose convolution or pooling layers"
                )
    else:
        layers = feature_map_layers(model)
    if not layers:
        raise PipelineError(f"{model.name} has no convolution or pooling layers to show")
    outputs = outputs_model(model, layers)(image[None].astype("float32"), training=False)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    return {layer.name: np.asarray(out[0], dtype=np.float32) for layer, out in
            zip(layers, outputs, strict=True)}


def normalise_channel(channel: np.ndarray) -> np.ndarray:
    """Chollet's display scaling: zero mean, 64 grey levels per standard deviation, around 128."""
    std = float(channel.std())
    if std < 1e-8:
        return np.zeros_like(channel)
    return np.clip((channel - channel.mean()) / std * 64.0 + 128.0, 0, 255)


def activation_grid(maps: np.ndarray, max_channels: int = 64, columns: int = 16) -> np.ndarray:
    """The first ``max_channels`` channels of (h, w, C) maps, normalised and tiled."""
    channels = np.moveaxis(maps[..., :max_channels], -1, 0)
    normalised = np.stack([normalise_channel(channel) for channel in channels])
    columns = min(columns, math.ceil(math.sqrt(len(normalised) * 2)))
    return tile(normalised, columns)


def write_activations(
    run_path: str | Path,
    image_path: str | Path,
    *,
    layer_names: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    max_channels: int = 64,
    which: str = "best",
) -> list[Path]:
    """Write one PNG per layer to ``out_dir`` (default ``<run>/visualize/activations-<image>/``)."""
    if max_channels < 1:
        raise PipelineError(f"`max_channels` {max_channels}: must be at least 1")
    if out_dir is not None:
        output_folder(out_dir, "out_dir")  # refused before the model is loaded
    loaded = load_run_model(run_path, which)
    image = load_image_array(Path(image_path), loaded.image_size)
    activations = layer_activations(loaded.model, image, layer_names)
    out = output_folder(out_dir if out_dir else (
        loaded.run.file("visualize") / f"activations-{_safe(Path(image_path).stem)}"
    ), "out_dir")
    written = []
    for index, (name, maps) in enumerate(activations.items(), start=1):
        height, width, channels = maps.shape
        shown = min(channels, max_channels)
        title = (f"{name}: {height}x{width}, {channels} channels"
                 + (f" (first {shown})" if shown < channels else "")
                 + f"  -  {Path(image_path).name}")
        grid = activation_grid(maps, max_channels)
        written.append(save_mosaic(grid, out / f"{index:02d}-{_safe(name)}.png", title))
    return written


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
