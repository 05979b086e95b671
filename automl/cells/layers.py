"""Cells as serializable Keras layers: `MixedOp`, `SearchCell` and the fixed `Cell`.

Configs hold op names, cell strings and plain numbers only, so models load with
Keras safe mode on. Edges follow `genotype.darts_edges` / `genotype.nb201_edges`
(sorted by target, then source), so row k of an alpha matrix always means edge k.
Search layers receive their op weights (the softmaxed alphas) as a call input:
the alphas themselves live on the `SuperNet`.

Example:
    >>> cell = SearchCell("normal", channels=8)  # doctest: +SKIP
    >>> out = cell([s0, s1, keras.ops.softmax(alphas, axis=-1)])  # doctest: +SKIP
"""

from __future__ import annotations

import keras
from keras import ops

from automl.cells.genotype import (
    DARTS_STEPS,
    cell_from_string,
    cell_to_string,
    darts_edges,
    nb201_edges,
)
from automl.cells.ops import SPACE_OPS, FactorizedReduce, batch_norm, build_op, relu_conv_bn

CELL_KINDS = ("normal", "reduction", "nb201")


def _check_kind(kind: str) -> None:
    if kind not in CELL_KINDS:
        raise ValueError(f"Cell kind must be one of {CELL_KINDS}. Received: {kind=}")


@keras.saving.register_keras_serializable(package="automl")
class MixedOp(keras.layers.Layer):
    """The weighted sum of every candidate op of a space on one edge.

    Ops are built without affine batch norms; pooling ops get an extra
    non-affine BN, as in DARTS. The `none` op adds nothing and is skipped.

    Args:
        channels: input and output channels.
        stride: 1, or 2 for edges leaving the inputs of a reduction cell.
        space: "darts" or "nb201" (which op list).

    Call args:
        inputs: `[x, weights]`, `weights` of shape (num_ops,) in the space's op order.
    """

    def __init__(self, channels: int, stride: int = 1, space: str = "darts", **kwargs):
        super().__init__(**kwargs)
        if space not in SPACE_OPS:
            raise ValueError(f"space must be one of {sorted(SPACE_OPS)}. Received: {space=}")
        self.channels = channels
        self.stride = stride
        self.space = space
        self.op_names = SPACE_OPS[space]
        self.candidates = [build_op(name, channels, stride, affine=False) for name in self.op_names]
        self.pool_norms = [batch_norm(affine=False) if "pool" in n else None for n in self.op_names]

    def build(self, input_shape):
        x_shape = _first_shape(input_shape)
        for op, norm in zip(self.candidates, self.pool_norms, strict=True):
            if not op.built:
                op.build(x_shape)
            if norm is not None:
                norm.build(op.compute_output_shape(x_shape))

    def call(self, inputs, training=None):
        x, weights = inputs
        weights = ops.cast(weights, x.dtype)
        terms = []
        for k, name in enumerate(self.op_names):
            if name == "none":  # contributes zeros; its alpha still gets gradients via softmax
                continue
            out = self.candidates[k](x, training=training)
            if self.pool_norms[k] is not None:
                out = self.pool_norms[k](out, training=training)
            terms.append(weights[k] * out)
        return ops.sum(ops.stack(terms), axis=0)

    def compute_output_shape(self, input_shape):
        return self.candidates[0].compute_output_shape(_first_shape(input_shape))

    def get_config(self):
        config = {"channels": self.channels, "stride": self.stride, "space": self.space}
        return {**super().get_config(), **config}


def _preprocessors(channels: int, reduction_prev: bool, affine: bool):
    """Map both DARTS cell inputs to `channels` (the first one halved if it is twice as large)."""
    first = (
        FactorizedReduce(channels, affine=affine)
        if reduction_prev
        else relu_conv_bn(channels, 1, affine=affine)
    )
    return first, relu_conv_bn(channels, 1, affine=affine)


def _first_shape(input_shape):
    """The shape of the first input, given one shape or a list of shapes."""
    if input_shape and isinstance(input_shape[0], list | tuple):
        return tuple(input_shape[0])
    return tuple(input_shape)


def _half(size: int | None) -> int | None:
    return None if size is None else (size + 1) // 2


class _CellBase(keras.layers.Layer):
    """Shared skeleton: DARTS cells take `[s0, s1, ...]` and concat 4 nodes, NB201 cells
    take `[x, ...]` and return their last node. Subclasses fill `self.edge_ops` and
    implement `_edge(k, x, extra, training)`; `self.edges` lists (source, target)."""

    def __init__(self, kind: str, channels: int, reduction_prev: bool, affine: bool, **kwargs):
        super().__init__(**kwargs)
        _check_kind(kind)
        self.kind = kind
        self.channels = channels
        self.reduction_prev = reduction_prev
        if kind == "nb201":
            self.edges = nb201_edges()
        else:
            self.edges = darts_edges(DARTS_STEPS)
            self.pre0, self.pre1 = _preprocessors(channels, reduction_prev, affine)

    def build(self, input_shape):
        shapes = self._input_state_shapes(input_shape)
        batch, height, width, _ = shapes[-1]
        if self.kind == "reduction":
            height, width = _half(height), _half(width)
        node_shape = (batch, height, width, self.channels)
        for (source, _), op in zip(self.edges, self.edge_ops, strict=True):
            if op is not None and not op.built:
                op.build(shapes[source] if source < len(shapes) else node_shape)

    def _input_state_shapes(self, input_shape):
        if self.kind == "nb201":
            return [_first_shape(input_shape)]
        shapes = []
        for layer, shape in ((self.pre0, input_shape[0]), (self.pre1, input_shape[1])):
            if not layer.built:
                layer.build(shape)
            shapes.append(tuple(layer.compute_output_shape(shape)))
        return shapes

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = self._input_state_shapes(input_shape)[-1]
        if self.kind == "nb201":
            return (batch, height, width, self.channels)
        if self.kind == "reduction":
            height, width = _half(height), _half(width)
        return (batch, height, width, self.channels * DARTS_STEPS)

    def _stride(self, source: int) -> int:
        return 2 if self.kind == "reduction" and source < 2 else 1

    def _run(self, states, extra, training):
        """Sum the edges into each node in edge order; `states` holds the input nodes."""
        first_target = len(states)
        for target in range(first_target, self.edges[-1][1] + 1):
            terms = [
                out
                for k, (source, t) in enumerate(self.edges)
                if t == target
                for out in [self._edge(k, states[source], extra, training)]
                if out is not None
            ]
            states.append(ops.sum(ops.stack(terms), axis=0) if terms else self._zeros(states))
        if self.kind == "nb201":
            return states[-1]
        return ops.concatenate(states[first_target:], axis=-1)

    def _zeros(self, states):
        x = states[0]
        if self.kind == "reduction":
            x = x[:, ::2, ::2, :]
        return ops.zeros_like(x)

    def _inputs(self, inputs, training):
        if self.kind == "nb201":
            return [inputs[0]], inputs[1:]
        s0 = self.pre0(inputs[0], training=training)
        s1 = self.pre1(inputs[1], training=training)
        return [s0, s1], inputs[2:]

    def get_config(self):
        config = {
            "kind": self.kind,
            "channels": self.channels,
            "reduction_prev": self.reduction_prev,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="automl")
class SearchCell(_CellBase):
    """A cell of the supernet: every edge is a `MixedOp`.

    Args:
        kind: "normal" or "reduction" (DARTS: 14 edges x 8 ops) or "nb201" (6 edges x 5 ops).
        channels: channels of every node (a DARTS cell outputs 4 * channels).
        reduction_prev: DARTS only; whether the previous cell was a reduction cell
            (then the first input is FactorizedReduce-d).

    Call args:
        inputs: DARTS `[s0, s1, weights]`, NB201 `[x, weights]`; `weights` has shape
            (num_edges, num_ops), rows in edge order.
    """

    def __init__(self, kind: str, channels: int, reduction_prev: bool = False, **kwargs):
        super().__init__(kind, channels, reduction_prev, affine=False, **kwargs)
        space = "nb201" if kind == "nb201" else "darts"
        self.edge_ops = [MixedOp(channels, self._stride(source), space) for source, _ in self.edges]

    @property
    def alpha_shape(self) -> tuple[int, int]:
        """(num_edges, num_ops) of the weights this cell expects."""
        space = "nb201" if self.kind == "nb201" else "darts"
        return (len(self.edges), len(SPACE_OPS[space]))

    def _edge(self, k, x, extra, training):
        return self.edge_ops[k]([x, extra[0][k]], training=training)

    def call(self, inputs, training=None):
        states, extra = self._inputs(inputs, training)
        return self._run(states, extra, training)


@keras.saving.register_keras_serializable(package="automl")
class Cell(_CellBase):
    """A fixed cell built from a genotype's cell string.

    Args:
        cell: the cell string, e.g. "|sep_conv_3x3~0|skip_connect~1|+..." (DARTS: 4 nodes of
            2 entries, inputs 0..node+1; NB201: 3 nodes, inputs 0..node).
        kind: "normal", "reduction" or "nb201".
        channels: channels of every node.
        reduction_prev: DARTS only, as in `SearchCell`.

    Call args:
        inputs: DARTS `[s0, s1]`, NB201 `[x]` or `x`.
    """

    def __init__(self, cell: str, kind: str, channels: int, reduction_prev=False, **kwargs):
        super().__init__(kind, channels, reduction_prev, affine=True, **kwargs)
        spec = cell_from_string(cell)
        self.cell = cell_to_string(spec)
        offset = 1 if kind == "nb201" else 2
        if len(spec) != self.edges[-1][1] - offset + 1:
            raise ValueError(f"Wrong number of nodes for a {kind} cell. Received: {cell=}")
        self.edges, self.edge_ops = [], []
        for node, entries in enumerate(spec):
            for name, source in entries:
                if source >= node + offset:
                    raise ValueError(f"Node {node + offset} cannot read {source}. {cell=}")
                self.edges.append((source, node + offset))
                is_none = name == "none"
                self.edge_ops.append(
                    None if is_none else build_op(name, channels, self._stride(source))
                )

    def _edge(self, k, x, extra, training):
        op = self.edge_ops[k]
        return None if op is None else op(x, training=training)

    def call(self, inputs, training=None):
        if not isinstance(inputs, list | tuple):
            inputs = [inputs]
        states, _ = self._inputs(list(inputs), training)
        return self._run(states, None, training)

    def get_config(self):
        return {**super().get_config(), "cell": self.cell}


@keras.saving.register_keras_serializable(package="automl")
class ResidualReduction(keras.layers.Layer):
    """The NAS-Bench-201 reduction block: a stride-2 residual block to `channels` channels
    (ReLU-Conv-BN 3x3 stride 2, ReLU-Conv-BN 3x3, plus 2x2 average pool and 1x1 conv).

    Args:
        channels: output channels.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.conv_a = relu_conv_bn(channels, 3, stride=2)
        self.conv_b = relu_conv_bn(channels, 3)
        self.pool = keras.layers.AveragePooling2D(2, 2, padding="same")
        self.shortcut = keras.layers.Conv2D(channels, 1, use_bias=False)

    def build(self, input_shape):
        self.conv_a.build(input_shape)
        half = self.conv_a.compute_output_shape(input_shape)
        self.conv_b.build(half)
        self.shortcut.build(self.pool.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        residual = self.conv_b(self.conv_a(inputs, training=training), training=training)
        return self.shortcut(self.pool(inputs)) + residual

    def compute_output_shape(self, input_shape):
        return self.conv_a.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}
