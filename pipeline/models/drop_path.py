"""Drop path (stochastic depth) in a conv base: which Adds are residual, and at which rate.

Each residual Add of the base is rebuilt as a ``StochasticDepthAdd``: same name, trainable
flag and dtype, no weights, and its inputs in the same order, so that the graph and the
order of its layers, which ``unfreeze`` counts in, stay as they were. The rate rises
linearly with depth, the convention of timm and ``keras.applications``: the i-th of N
residual adds drops at ``rate * i / N``, so the first blocks, which hold generic edges and
textures, are nearly always kept.

Which input of an Add is the residual branch is read from the graph, not from names: it is
the one at the end of the longer path (ResNet and MobileNetV2 add ``[shortcut, x]``,
EfficientNet ``[x, shortcut]``; ResNet's projection shortcut, conv and BN, is still shorter
than its three-conv branch). ``keras.applications`` EfficientNet already drops its branches
by a per-sample Dropout in front of the Add (its ``drop_connect``, 0.2 at the top); with
drop path on, that Dropout is rebuilt at rate 0, so that no branch is dropped twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import keras

from pipeline.errors import PipelineError
from pipeline.layers.stochastic_depth_add import StochasticDepthAdd
from pipeline.models.drop_path_options import NO_DROP_PATH, check_drop_path


def _tensors(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _per_sample_dropout(layer: keras.layers.Layer | None) -> bool:
    shape = getattr(layer, "noise_shape", None)
    return isinstance(layer, keras.layers.Dropout) and shape is not None and all(
        size == 1 for size in shape[1:])


@dataclass(frozen=True)
class DropPathPlan:
    """How a clone of a model rebuilds its residual Adds (empty: the model unchanged)."""

    rates: dict[str, float] = field(default_factory=dict)  # residual Add -> its drop rate
    shortcut_first: frozenset[str] = frozenset()  # Adds whose inputs are [shortcut, residual]
    drop_connect: frozenset[str] = frozenset()  # the base's own per-sample branch Dropouts

    def rebuild(self, layer: keras.layers.Layer, config: dict) -> keras.layers.Layer:
        """A fresh layer from ``layer``'s ``config``: a residual Add as a ``StochasticDepthAdd``
        at its rate, the base's own drop-connect Dropout at rate 0, any other as it was."""
        if layer.name in self.rates:
            return StochasticDepthAdd.from_config({
                **config, "rate": self.rates[layer.name],
                "residual_index": int(layer.name in self.shortcut_first)})
        if layer.name in self.drop_connect:
            config = {**config, "rate": 0.0}
        return layer.__class__.from_config(config)


def plan_drop_path(layers: Sequence[keras.layers.Layer], rate: float) -> DropPathPlan:
    """The plan for the residual Adds among ``layers`` (a conv base's, in graph order): Adds of
    two inputs of the same shape, the i-th of N at ``rate * i / N``; none at ``rate`` 0."""
    check_drop_path(rate)
    if rate == NO_DROP_PATH:
        return DropPathPlan()
    depth: dict[int, int] = {}  # id(tensor) -> longest path to it from outside ``layers``
    producer: dict[int, keras.layers.Layer] = {}
    adds: list[tuple[str, int, keras.layers.Layer | None]] = []
    for layer in layers:
        inputs = _tensors(layer.input)
        below = max((depth.get(id(tensor), 0) for tensor in inputs), default=0)
        for tensor in _tensors(layer.output):
            depth[id(tensor)], producer[id(tensor)] = below + 1, layer
        if isinstance(layer, keras.layers.Add) and len(inputs) == 2 and (
                tuple(inputs[0].shape) == tuple(inputs[1].shape)):
            residual = 0 if depth.get(id(inputs[0]), 0) >= depth.get(id(inputs[1]), 0) else 1
            adds.append((layer.name, residual, producer.get(id(inputs[residual]))))
    return DropPathPlan(
        rates={name: rate * index / len(adds) for index, (name, _, _) in enumerate(adds, 1)},
        shortcut_first=frozenset(name for name, residual, _ in adds if residual == 1),
        drop_connect=frozenset(branch.name for _, _, branch in adds
                               if _per_sample_dropout(branch)),
    )


def dropping_blocks(model: keras.Model) -> tuple[list[str], list[str]]:
    """``(residual adds, those that drop in training)``: the model's ``StochasticDepthAdd``
    layers, and those of them that are trainable with a rate above 0."""
    adds = [layer for layer in model.layers if isinstance(layer, StochasticDepthAdd)]
    return ([layer.name for layer in adds],
            [layer.name for layer in adds if layer.trainable and layer.rate > 0])


def check_drop_path_trains(model: keras.Model, rate: float, base_name: str,
                           unfreeze: str) -> None:
    """Refuse a ``rate`` above 0 that would drop nothing: no residual block in the base, or
    none among the layers ``unfreeze`` thaws (a frozen block adds plainly)."""
    if rate == NO_DROP_PATH:
        return
    adds, dropping = dropping_blocks(model)
    if not adds:
        raise PipelineError(f"`drop_path` {rate}: the {base_name} base has no residual blocks "
                            "to drop; leave `drop_path` at 0 for it")
    if not dropping:
        raise PipelineError(
            f"`drop_path` {rate}: none of the {base_name} base's {len(adds)} residual blocks "
            f"trains with `unfreeze` {unfreeze}; thaw some (e.g. `unfreeze` all) or leave "
            "`drop_path` at 0")
