"""Candidate operations of the DARTS and NAS-Bench-201 cell spaces, by name.

Every op is made of built-in Keras layers with the structure of the original
spaces: ReLU-Conv-BN without conv bias, explicit `ZeroPadding2D` followed by
`"valid"` convolutions (so stride 2 lines up as in the reference code), and
batch normalisation with PyTorch's defaults (momentum 0.9, epsilon 1e-5). The
op layers and the helpers Keras lacks (`Zero`, `FactorizedReduce`, `Pool`, a
fused `BatchNorm`) are registered layers whose configs hold plain numbers.

Example:
    >>> op = build_op("sep_conv_3x3", channels=16, stride=1)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from automl.cells import backend
from automl.nb201 import codec as nb201

DARTS_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NB201_OPS: tuple[str, ...] = nb201.OPS
SPACE_OPS: dict[str, tuple[str, ...]] = {"darts": DARTS_OPS, "nb201": NB201_OPS}
PARAMETRIC_OPS = frozenset({"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"})


def batch_norm(affine: bool = True, name: str | None = None) -> BatchNorm:
    """Batch normalisation with PyTorch's defaults; `affine=False` drops gamma and beta."""
    return BatchNorm(affine=affine, name=name)


@keras.saving.register_keras_serializable(package="automl")
class BatchNorm(keras.layers.Layer):
    """Batch normalisation over NHWC channels, fused on TensorFlow.

    Same weights and maths as `keras.layers.BatchNormalization` with PyTorch's
    defaults (momentum 0.9, epsilon 1e-5), but about 8 graph ops instead of 34: a
    supernet holds hundreds of these, and graph size is what tracing costs.
    Other backends, and inputs that are not float32, use the `keras.ops` formula.

    Args:
        affine: whether to learn a scale (gamma) and an offset (beta).
        momentum: weight of the old moving statistics.
        epsilon: added to the variance.
    """

    def __init__(self, affine: bool = True, momentum: float = 0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.affine, self.momentum, self.epsilon = affine, momentum, epsilon

    def build(self, input_shape):
        channels = (input_shape[-1],)
        if self.affine:
            self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape=channels, initializer="ones", trainable=False, name="moving_variance"
        )

    def call(self, inputs, training=None):
        dtype = inputs.dtype
        channels = inputs.shape[-1]
        scale = ops.cast(self.gamma, dtype) if self.affine else ops.ones((channels,), dtype)
        offset = ops.cast(self.beta, dtype) if self.affine else ops.zeros((channels,), dtype)
        if not training:
            mean, variance = self.moving_mean, self.moving_variance
            inverse = ops.rsqrt(ops.cast(variance, dtype) + self.epsilon) * scale
            return inputs * inverse + (offset - ops.cast(mean, dtype) * inverse)
        fused = backend.current().fused_batch_norm
        if dtype == "float32" and fused is not None:
            outputs, mean, variance = fused(inputs, scale, offset, self.epsilon)
        else:
            mean, variance = ops.moments(inputs, axes=[0, 1, 2])
            outputs = (inputs - mean) * ops.rsqrt(variance + self.epsilon) * scale + offset
            count = ops.cast(ops.size(inputs), variance.dtype) / channels
            variance = variance * count / ops.maximum(count - 1.0, 1.0)  # unbiased, as fused
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            batch = ops.cast(ops.stop_gradient(batch), moving.dtype)
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {"affine": self.affine, "momentum": self.momentum, "epsilon": self.epsilon}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="automl")
class Zero(keras.layers.Layer):
    """The `none` op: zeros with the shape of the (strided) input.

    Args:
        stride: 1 or 2; at 2 the spatial size becomes ceil(size / 2).
    """

    def __init__(self, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, inputs):
        return ops.zeros_like(inputs[:, :: self.stride, :: self.stride, :])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, _strided(height, self.stride), _strided(width, self.stride), channels)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="automl")
class FactorizedReduce(keras.layers.Layer):
    """Halve the spatial size with two 1x1 stride-2 convs, the second one pixel shifted.

    ReLU, then `conv_a(x)` and `conv_b(x shifted by one pixel)` each give half
    the output channels; they are concatenated and batch-normalised.

    Args:
        channels: output channels (even).
        affine: whether the batch normalisation learns a scale and an offset.
    """

    def __init__(self, channels: int, affine: bool = True, **kwargs):
        super().__init__(**kwargs)
        if channels % 2:
            raise ValueError(f"FactorizedReduce needs even channels. Received: {channels=}")
        self.channels = channels
        self.affine = affine
        self.relu = keras.layers.ReLU()
        self.conv_a = keras.layers.Conv2D(channels // 2, 1, strides=2, use_bias=False)
        # Pad right/bottom then crop left/top: the input shifted by one pixel.
        self.conv_b = keras.layers.Conv2D(channels // 2, 1, strides=2, use_bias=False)
        self.bn = batch_norm(affine)

    def build(self, input_shape):
        self.conv_a.build(input_shape)
        self.conv_b.build(input_shape)
        self.bn.build(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.relu(inputs)
        # Pad right/bottom then drop the first row/column: the input shifted by one pixel.
        shifted = ops.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]
        x = ops.concatenate([self.conv_a(x), self.conv_b(shifted)], axis=-1)
        return self.bn(x, training=training)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, _strided(height, 2), _strided(width, 2), self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "affine": self.affine}


@keras.saving.register_keras_serializable(package="automl")
class Pool(keras.layers.Layer):
    """3x3 max or average pooling with one pixel of explicit padding.

    Padding is symmetric as in the reference code; padded cells never win the
    max and are not counted by the average (PyTorch's `count_include_pad=False`).

    Args:
        mode: "max" or "avg".
        pool_size: odd window size.
        stride: 1 or 2.
    """

    def __init__(self, mode: str, pool_size: int = 3, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "avg"):
            raise ValueError(f"Pool mode must be 'max' or 'avg'. Received: {mode=}")
        self.mode = mode
        self.pool_size = pool_size
        self.stride = stride
        self._inverse_counts = None

    def build(self, input_shape):
        if self.mode == "avg":
            _, height, width, _ = input_shape
            self._inverse_counts = 1.0 / (_counts(height, self) * _counts(width, self).T)[..., None]

    def call(self, inputs):
        pad = self.pool_size // 2
        paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
        if self.mode == "max":
            low = ops.convert_to_tensor(-1e9, dtype=inputs.dtype)
            x = ops.pad(inputs, paddings, constant_values=low)
            return ops.max_pool(x, self.pool_size, self.stride, padding="valid")
        x = ops.average_pool(ops.pad(inputs, paddings), self.pool_size, self.stride, "valid")
        return x * ops.cast(self._inverse_counts, x.dtype) * self.pool_size**2

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, _strided(height, self.stride), _strided(width, self.stride), channels)

    def get_config(self):
        config = {"mode": self.mode, "pool_size": self.pool_size, "stride": self.stride}
        return {**super().get_config(), **config}


def _strided(size: int | None, stride: int) -> int | None:
    return None if size is None else (size + stride - 1) // stride


def _counts(size: int, pool: Pool) -> np.ndarray:
    """Column vector: how many real (unpadded) cells each output window covers."""
    pad = pool.pool_size // 2
    starts = np.arange(_strided(size, pool.stride)) * pool.stride - pad
    ends = np.minimum(starts + pool.pool_size, size)
    return (ends - np.maximum(starts, 0)).astype("float32")[:, None]


class _Chain(keras.layers.Layer):
    """Layers applied in order (`self.steps`), built explicitly from shapes.

    Unlike `keras.Sequential` it needs no symbolic graph, which keeps supernets of
    hundreds of small ops quick to build and to trace.
    """

    def build(self, input_shape):
        shape = input_shape
        for layer in self.steps:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.steps:
            x = layer(x, training=training) if _takes_training(layer) else layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self.steps:
            shape = layer.compute_output_shape(shape)
        return shape


def _takes_training(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, BatchNorm | _Chain)


@keras.saving.register_keras_serializable(package="automl")
class ReLUConvBN(_Chain):
    """ReLU, explicitly padded (dilated depthwise-separable or plain) conv without bias, BN.

    Args:
        channels: output channels.
        kernel_size: odd kernel size.
        stride: 1 or 2.
        separable: a depthwise kxk conv then a pointwise 1x1 conv instead of a plain conv.
        dilation: dilation rate of the depthwise conv (separable only).
        affine: whether the batch norm learns scale and offset.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        stride: int = 1,
        separable: bool = False,
        dilation: int = 1,
        affine: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels, self.kernel_size, self.stride = channels, kernel_size, stride
        self.separable, self.dilation, self.affine = separable, dilation, affine
        pad = keras.layers.ZeroPadding2D(dilation * (kernel_size - 1) // 2)
        if separable:
            convs = [
                keras.layers.DepthwiseConv2D(
                    kernel_size, strides=stride, dilation_rate=dilation, use_bias=False
                ),
                keras.layers.Conv2D(channels, 1, use_bias=False),
            ]
        else:
            convs = [keras.layers.Conv2D(channels, kernel_size, strides=stride, use_bias=False)]
        self.steps = [keras.layers.ReLU(), pad, *convs, batch_norm(affine)]

    def get_config(self):
        config = {
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "separable": self.separable,
            "dilation": self.dilation,
            "affine": self.affine,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="automl")
class SepConv(_Chain):
    """DARTS separable conv: a separable ReLU-Conv-BN at `stride`, then one at stride 1.

    Args:
        channels: input and output channels.
        kernel_size: 3 or 5.
        stride: stride of the first half.
        affine: whether the batch norms learn scale and offset.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.kernel_size, self.stride, self.affine = (
            channels,
            kernel_size,
            stride,
            affine,
        )
        self.steps = [
            ReLUConvBN(channels, kernel_size, stride, separable=True, affine=affine),
            ReLUConvBN(channels, kernel_size, 1, separable=True, affine=affine),
        ]

    def get_config(self):
        config = {
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "affine": self.affine,
        }
        return {**super().get_config(), **config}


def relu_conv_bn(channels: int, kernel_size: int, stride: int = 1, affine: bool = True):
    """ReLU, explicitly padded conv without bias, BN."""
    return ReLUConvBN(channels, kernel_size, stride, affine=affine)


def sep_conv(channels: int, kernel_size: int, stride: int = 1, affine: bool = True):
    """Separable conv applied twice: the first at `stride`, the second at stride 1."""
    return SepConv(channels, kernel_size, stride, affine)


def dil_conv(channels: int, kernel_size: int, stride: int = 1, affine: bool = True):
    """Dilated (rate 2) separable conv applied once."""
    return ReLUConvBN(channels, kernel_size, stride, separable=True, dilation=2, affine=affine)


def skip_connect(channels: int, stride: int = 1, affine: bool = True) -> keras.layers.Layer:
    """Identity at stride 1, FactorizedReduce at stride 2."""
    if stride == 1:
        return keras.layers.Identity()
    return FactorizedReduce(channels, affine=affine)


OpBuilder = Callable[[int, int, bool], keras.layers.Layer]

OPS: dict[str, OpBuilder] = {
    "none": lambda channels, stride, affine: Zero(stride),
    "max_pool_3x3": lambda channels, stride, affine: Pool("max", 3, stride),
    "avg_pool_3x3": lambda channels, stride, affine: Pool("avg", 3, stride),
    "skip_connect": skip_connect,
    "sep_conv_3x3": lambda channels, stride, affine: sep_conv(channels, 3, stride, affine),
    "sep_conv_5x5": lambda channels, stride, affine: sep_conv(channels, 5, stride, affine),
    "dil_conv_3x3": lambda channels, stride, affine: dil_conv(channels, 3, stride, affine),
    "dil_conv_5x5": lambda channels, stride, affine: dil_conv(channels, 5, stride, affine),
    "nor_conv_1x1": lambda channels, stride, affine: relu_conv_bn(channels, 1, stride, affine),
    "nor_conv_3x3": lambda channels, stride, affine: relu_conv_bn(channels, 3, stride, affine),
}


def build_op(name: str, channels: int, stride: int = 1, affine: bool = True) -> keras.layers.Layer:
    """A fresh layer for the op `name`.

    Args:
        name: a key of `OPS`.
        channels: input and output channels (ops inside a cell keep the width).
        stride: 1, or 2 on the edges leaving the inputs of a reduction cell.
        affine: whether batch normalisations learn scale and offset (False during search).

    Returns:
        A Keras layer mapping (batch, h, w, channels) to (batch, h/stride, w/stride, channels).

    Raises:
        ValueError: if the name is unknown.
    """
    if name not in OPS:
        raise ValueError(f"Unknown op. Expected one of {sorted(OPS)}. Received: {name=}")
    return OPS[name](channels, stride, affine)
