"""Layer accounting: output shape, parameters, multiply-accumulates and receptive field per layer.

What ``model.summary()`` leaves out: how much arithmetic each layer costs and how much of
the image one of its output positions can see.

* Multiply-accumulates (MACs) for one image: a convolution costs
  ``k_h * k_w * (c_in / groups) * c_out * h_out * w_out``; a depthwise convolution
  ``k_h * k_w * c_in * depth_multiplier * h_out * w_out``; a separable one that plus its
  1x1 pointwise step; a transposed convolution ``k_h * k_w * c_in * c_out * h_in * w_in``
  (every input pixel is spread over a kernel); a dense layer ``inputs * units`` (per
  position when applied to a feature map). Everything else counts 0: pooling, activations,
  additions, and batch normalisation (at inference it folds into the preceding
  convolution's weights).
* Receptive field: the square (``rows x cols``) of input pixels that one output position
  depends on, and the jump, the distance in input pixels between neighbouring outputs.
  Through a layer with kernel ``k``, stride ``s`` and dilation ``d``:
  ``field += (d * (k - 1)) * jump`` and ``jump *= s``. Where branches merge (ResNet's
  additions, Inception's concatenations) the largest field over the inbound paths is kept.
  After ``Flatten`` or global pooling (anything that drops the spatial axes) it is the whole
  image ("all"); through layers that resample space (up-sampling, resizing) it is not
  tracked ("-").

Nested models (a base model used as one layer, an augmentation ``Sequential``) are walked
into; their layers are listed as ``outer/inner``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

# -- output size of a convolution or pooling -------------------------------------------------------


def conv_output_size(
    size: int | None, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> int | None:
    """Output length along one axis of a convolution or pooling window, as Keras computes it.

    ``valid``: ``floor((size - dilation * (kernel - 1) - 1) / stride) + 1``;
    ``same`` (and ``causal``): ``ceil(size / stride)``. ``None`` (unknown size) stays None.
    """
    if size is None:
        return None
    if min(kernel, stride, dilation) < 1:
        raise ValueError("kernel, stride and dilation must be at least 1")
    padding = padding.lower()
    if padding in ("same", "causal"):
        return -(-size // stride)
    if padding != "valid":
        raise ValueError(f"unknown padding {padding!r}; use 'valid' or 'same'")
    span = dilation * (kernel - 1) + 1
    if size < span:
        raise ValueError(f"input of {size} is smaller than the window of {span}")
    return (size - span) // stride + 1


# -- receptive field -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """Receptive field of one output position: ``size`` and ``jump`` in input pixels (rows, cols).

    ``whole`` marks outputs that see the whole image (after flatten or global pooling).
    """

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    whole: bool = False

    def through(self, kernel: tuple[int, ...], stride: tuple[int, ...],
                dilation: tuple[int, ...]) -> Field:
        """The field after a window of ``kernel`` moved by ``stride``, spread by ``dilation``."""
        if self.whole:
            return self
        size = tuple(
            r + d * (k - 1) * j
            for r, k, d, j in zip(self.size, kernel, dilation, self.jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(self.jump, stride, strict=True))
        return Field(size, jump)

    def __str__(self) -> str:
        if self.whole:
            return "all"
        rows, cols = self.size
        return f"{rows}" if rows == cols else f"{rows}x{cols}"


WHOLE = Field(whole=True)


def merge_fields(fields: list[Field | None]) -> Field | None:
    """The field of a layer fed by several paths: the largest of them (None if any is unknown)."""
    if not fields:
        return Field()
    if any(f is None for f in fields):
        return None
    if any(f.whole for f in fields):
        return WHOLE
    size = tuple(max(f.size[i] for f in fields) for i in range(2))
    jump = tuple(max(f.jump[i] for f in fields) for i in range(2))
    return Field(size, jump)


def output_field(
    layer: keras.Layer, field: Field | None, input_rank: int, output_rank: int
) -> Field | None:
    """The receptive field after ``layer``, given the field of its input."""
    if field is None:
        return None
    if input_rank == 4 and output_rank < 4:
        return WHOLE  # spatial axes gone: each output sees the whole image
    if isinstance(layer, keras.layers.Conv2DTranspose | keras.layers.UpSampling2D
                  | keras.layers.Resizing):
        return None
    window = _window(layer)
    if window is None or len(window[0]) != 2:
        return field
    return field.through(*window)


def _window(layer: keras.Layer) -> tuple[tuple[int, ...], ...] | None:
    """(kernel, stride, dilation) of a sliding-window layer, else None."""
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if kernel is None or "Global" in type(layer).__name__:
        return None
    kernel = _tuple(kernel)
    stride = _tuple(getattr(layer, "strides", None) or kernel, len(kernel))
    dilation = _tuple(getattr(layer, "dilation_rate", 1) or 1, len(kernel))
    return kernel, stride, dilation


def _tuple(value, length: int | None = None) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * (length or 2)
    return tuple(int(v) for v in value)


# -- multiply-accumulates --------------------------------------------------------------------------


def layer_macs(layer: keras.Layer, input_shape, output_shape) -> int | None:
    """Multiply-accumulates of ``layer`` for one sample (formulas in the module docstring).

    Shapes include the batch axis; None when a needed size is unknown.
    """
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"

    def channels(shape):
        return shape[1] if channels_first else shape[-1]

    def spatial(shape):
        axes = shape[2:] if channels_first else shape[1:-1]
        return None if any(a is None for a in axes) else math.prod(axes)

    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(d for d in output_shape[1:-1] if d is not None)
        if input_shape[-1] is None:
            return None
        return int(input_shape[-1]) * layer.units * positions
    kernel = getattr(layer, "kernel_size", None)
    if kernel is None:
        return 0
    window = math.prod(_tuple(kernel))
    c_in, c_out = channels(input_shape), channels(output_shape)
    if c_in is None:
        return None
    if isinstance(layer, keras.layers.Conv1DTranspose | keras.layers.Conv2DTranspose
                  | keras.layers.Conv3DTranspose):
        positions = spatial(input_shape)
        return None if positions is None else window * c_in * c_out * positions
    positions = spatial(output_shape)
    if positions is None:
        return None
    multiplier = getattr(layer, "depth_multiplier", 1) or 1
    if isinstance(layer, keras.layers.SeparableConv1D | keras.layers.SeparableConv2D):
        return window * c_in * multiplier * positions + c_in * multiplier * c_out * positions
    if isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D):
        return window * c_in * multiplier * positions
    groups = getattr(layer, "groups", 1) or 1
    return window * (c_in // groups) * c_out * positions


# -- walking a model -------------------------------------------------------------------------------


@dataclass
class LayerAccount:
    """One row of the accounting: a layer (or a nested model's layer, ``outer/inner``)."""

    name: str
    kind: str
    output_shape: tuple | None
    params: int
    macs: int | None
    field: Field | None


@dataclass(frozen=True)
class ModelAccount:
    """Every layer's row and the totals; ``params`` equals ``model.count_params()``."""

    name: str
    input_shape: tuple | None
    layers: tuple[LayerAccount, ...]
    params: int
    trainable_params: int

    @property
    def macs(self) -> int:
        return sum(row.macs or 0 for row in self.layers)

    def row(self, name: str) -> LayerAccount:
        for row in self.layers:
            if row.name == name or row.name.endswith(f"/{name}"):
                return row
        raise KeyError(name)


def account_model(model: keras.Model) -> ModelAccount:
    """Account for every layer of a built ``model`` (one image per forward pass)."""
    rows: dict[int, LayerAccount] = {}
    _walk(model, "", Field(), rows)
    listed = list(rows.values())
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    input_shape = model.input_shape if not isinstance(model.input_shape, list) else None
    return ModelAccount(model.name, input_shape, tuple(listed), sum(r.params for r in listed),
                        int(trainable))


def _graph_of(model: keras.Model):
    """The functional graph behind a model (a built ``Sequential`` keeps one inside)."""
    graph = getattr(model, "_functional", None) or model
    return graph if hasattr(graph, "_nodes_by_depth") else None


def _walk(
    model: keras.Model, prefix: str, input_field: Field | None, rows: dict[int, LayerAccount]
) -> Field | None:
    """Add ``model``'s layers to ``rows``; return the field of its first output."""
    graph = _graph_of(model)
    if graph is None:  # a subclassed model: parameters only, no graph to follow
        for layer in model.layers:
            rows.setdefault(id(layer), LayerAccount(prefix + layer.name, type(layer).__name__,
                                                    None, layer.count_params(), None, None))
        return None
    fields: dict[int, Field | None] = {id(t): input_field for t in graph.inputs}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            layer = node.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            field_in = merge_fields([fields.get(id(t), input_field) for t in node.input_tensors])
            if isinstance(layer, keras.Model):
                field_out = _walk(layer, f"{prefix}{layer.name}/", field_in, rows)
            else:
                field_out = _account_node(layer, node, prefix, field_in, rows)
            for tensor in node.output_tensors:
                fields[id(tensor)] = field_out
    return fields.get(id(graph.outputs[0])) if graph.outputs else None


def _account_node(
    layer: keras.Layer, node, prefix: str, field_in: Field | None, rows: dict[int, LayerAccount]
) -> Field | None:
    """Add (or, for a shared layer called again, update) the row of one call of ``layer``."""
    in_shape = tuple(node.input_tensors[0].shape) if node.input_tensors else ()
    out_shape = tuple(node.output_tensors[0].shape)
    field_out = output_field(layer, field_in, len(in_shape), len(out_shape))
    macs = layer_macs(layer, in_shape, out_shape) if in_shape else 0
    row = rows.get(id(layer))
    if row is None:
        rows[id(layer)] = LayerAccount(prefix + layer.name, type(layer).__name__, out_shape,
                                       layer.count_params(), macs, field_out)
    elif row.macs is not None and macs is not None:
        row.macs += macs  # a shared layer costs arithmetic each time it is called
    return field_out


# -- the table -------------------------------------------------------------------------------------


def format_account(account: ModelAccount) -> str:
    """A text table: layer, type, output shape, parameters, MACs, receptive field, jump."""
    header = ("layer", "type", "output shape", "params", "MACs", "field", "jump")
    lines = [header]
    for row in account.layers:
        shape = "?" if row.output_shape is None else str(tuple(row.output_shape[1:]))
        jump = "-" if row.field is None or row.field.whole else _pair_text(row.field.jump)
        lines.append((row.name, row.kind, shape, f"{row.params:,}",
                      "?" if row.macs is None else f"{row.macs:,}",
                      "-" if row.field is None else str(row.field), jump))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3, 4, 5, 6}

    def render(line) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()

    rule = "-" * len(render(header))
    totals = [
        f"total params: {account.params:,} (trainable {account.trainable_params:,}, "
        f"non-trainable {account.params - account.trainable_params:,})",
        f"total multiply-accumulates: {account.macs:,} ({account.macs / 1e9:.2f} G) per image",
    ]
    return "\n".join([f"{account.name}  input {account.input_shape}", rule, render(header), rule,
                      *(render(line) for line in lines[1:]), rule, *totals])


def _pair_text(pair: tuple[int, int]) -> str:
    return f"{pair[0]}" if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
