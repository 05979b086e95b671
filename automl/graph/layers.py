"""The layer-type registry: everything the library knows about each layer type, in one place.

An `ArchitectureGraph` node names its layer type with a string (`"conv2d"`,
`"relu"`, ...); `get(name)` returns that type's `LayerType`, which holds its
parameter defaults, shape and parameter-count rules (`automl.graph.architecture`),
its Keras layer (`automl.graph.builder`), its role in a widening's effective area
(`automl.morphism.area`), its weight layout and initial weights
(`automl.morphism.weights`) and its graph-kernel label (`automl.kernels`).

Pure Python and numpy: Keras is imported only when a Keras layer is made.

Example:
    >>> get("maxpool").output_shape({"pool_size": 2, "strides": 2}, [(5, 5, 3)])
    (3, 3, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

Shape = tuple[int, ...]
Params = dict[str, Any]

# How a layer's output channels relate to its inputs' channels (the effective area).
PASS = "pass"  # channel c of the output depends on channel c of every input only
CONCAT = "concat"  # the output channels are the inputs' channels, one input after another
PRODUCE = "produce"  # the output channels are the layer's own units: they can grow
FIXED = "fixed"  # the output channels cannot change (input, output, flatten)

# Whether a layer's output is non-negative.
NON_NEGATIVE = "non_negative"  # always (ReLU)
KEPT = "kept"  # when every input is
ANY = "any"  # not known from the structure


class TokenShape(tuple):
    """A text input's shape (L,) (equal to the plain tuple) with its vocabulary size `tokens`."""

    def __new__(cls, shape, tokens: int):
        self = super().__new__(cls, shape)
        self.tokens = int(tokens)
        return self

    def __getnewargs__(self):
        return (tuple(self), self.tokens)


class InputAxis(NamedTuple):
    """An axis over input channels in one of a layer's weight arrays."""

    array: int  # index in the layer's `get_weights()` list
    axis: int
    scaled: bool  # a widening divides the weights of a channel copied c times by c


@dataclass(frozen=True)
class WeightLayout:
    """Where a layer's weight arrays (in `get_weights()` order) hold its channels.

    Attributes:
        units_from: index of the first array whose last axis is the layer's
            output units (it and every later array); None if the units cannot grow.
        input_axes: the arrays' axes over input channels.
        channelwise: every array holds one value per channel (BatchNorm).
    """

    units_from: int | None = None
    input_axes: tuple[InputAxis, ...] = ()
    channelwise: bool = False


class LayerType:
    """One layer type. Subclasses set the class attributes and override what differs.

    Attributes:
        name: the type name that graph nodes use.
        defaults: every parameter of the type, with its default (None: required).
        arity: number of inputs: "none" (the graph input), "one" or "many".
        channels: effective-area role: `PASS`, `CONCAT`, `PRODUCE` or `FIXED`.
        consumes: the layer has weights over its input channels.
        sign: `NON_NEGATIVE`, `KEPT` or `ANY` (is the output non-negative).
        width_param: the parameter holding the layer's width (filters or units).
        label_params: (parameter, prefix) pairs that the kernel label shows.
        weights: the layout of the layer's weight arrays.
        keras_class: name of the `keras.layers` class; None for no layer.
        takes_tokens: the layer takes a token sequence (`TokenShape`); others refuse one.
    """

    name: ClassVar[str]
    defaults: ClassVar[Params] = {}
    arity: ClassVar[str] = "one"
    channels: ClassVar[str] = PASS
    consumes: ClassVar[bool] = False
    sign: ClassVar[str] = ANY
    width_param: ClassVar[str | None] = None
    label_params: ClassVar[tuple[tuple[str, str], ...]] = ()
    weights: ClassVar[WeightLayout] = WeightLayout()
    keras_class: ClassVar[str | None] = None
    takes_tokens: ClassVar[bool] = False

    def output_shape(self, params: Params, ins: list[Shape]) -> Shape:
        """Output shape from the inputs' shapes (ValueError if they or `params` do not fit)."""
        if self.arity != "none":
            if not ins:
                raise ValueError("has no inputs.")
            if self.arity == "one" and len(ins) != 1:
                raise ValueError(f"takes one input. Received: {len(ins)} inputs")
        if not self.takes_tokens and any(isinstance(s, TokenShape) for s in ins):
            raise ValueError("cannot take token ids; add a 'bag' or 'embedding' layer first.")
        return self._shape(params, ins)

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        return ins[0]

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        """Number of weights (trainable and not), as Keras counts them."""
        return 0

    def keras_layer(self, params: Params, name: str) -> Any:
        """A fresh Keras layer called `name`; None if the type has none (the input)."""
        if self.keras_class is None:
            return None
        import keras

        return getattr(keras.layers, self.keras_class)(name=name, **self.keras_kwargs(params))

    def keras_kwargs(self, params: Params) -> Params:
        """Arguments of the Keras layer's constructor, the name left out."""
        return {}

    def label(self, params: Params) -> str:
        """Node label for the graph kernels: the type plus its structural parameters.

        Widths are left out; a stride of 1 is too. For example `conv2d_k3_s2`.
        """
        parts = [self.name]
        for param, prefix in self.label_params:
            value = params.get(param)
            if value is None or (param == "strides" and value == 1):
                continue
            parts.append(f"{prefix}{value}")
        return "_".join(parts)

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        """Weights of a layer that a morphism inserts after a tensor of `channels` channels.

        With `identity` the layer passes the first channels through (the others
        ignored), without it its output is zero. ValueError if it cannot.
        """
        if self.weights != WeightLayout():
            raise ValueError(f"A morphism cannot insert a {self.name!r} layer.")
        return []

    def skip_pool(self, params: Params) -> tuple[str, Params] | None:
        """The pooling (type, params) a skip branch needs to match this layer's resampling.

        None if the layer keeps the spatial size.
        """
        return None


LAYERS: dict[str, LayerType] = {}


def register(cls: type[LayerType]) -> type[LayerType]:
    """Class decorator: adds an instance of `cls` to `LAYERS` under `cls.name`."""
    if cls.name in LAYERS:
        raise ValueError(f"Layer type {cls.name!r} is already registered.")
    LAYERS[cls.name] = cls()
    return cls


def get(name: str) -> LayerType:
    """The registered layer type called `name` (ValueError naming the known ones if none)."""
    try:
        return LAYERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown layer type {name!r}. Known types: {sorted(LAYERS)}.") from None


def names() -> list[str]:
    """Names of the registered layer types, sorted."""
    return sorted(LAYERS)


def _image(shape: Shape) -> Shape:
    if len(shape) != 3:
        raise ValueError(f"needs an image (H, W, C) input. Received: shape={shape}")
    return shape


def _flat(shape: Shape) -> Shape:
    if len(shape) != 1:
        raise ValueError(f"needs a flat input; add 'gap' or 'flatten'. Received: shape={shape}")
    return shape


def _positive(value: Any, what: str) -> int:
    if not value or value < 1:
        raise ValueError(f"{what} must be a positive integer. Received: {value}")
    return value


def _strided(shape: Shape, stride: int, channels: int) -> Shape:
    h, w = (math.ceil(size / stride) for size in shape[:2])  # padding "same"
    return (h, w, channels)


# ---------------------------------------------------------------------- layer types
@register
class Input(LayerType):
    name = "input"
    defaults = {"shape": None}  # and "tokens": V of a text input, None (left out: same keys)
    arity = "none"
    channels = FIXED

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        shape = tuple(int(s) for s in params["shape"])
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f"input shape must be positive. Received: shape={shape}")
        if params.get("tokens") is None:
            return shape
        if len(shape) != 1:
            raise ValueError(f"a token input has shape (L,). Received: shape={shape}")
        return TokenShape(shape, _positive(params["tokens"], "tokens"))


@register
class Conv2D(LayerType):
    name = "conv2d"
    defaults = {"filters": None, "kernel_size": 3, "strides": 1, "use_bias": True}
    channels = PRODUCE
    consumes = True
    width_param = "filters"
    label_params = (("kernel_size", "k"), ("strides", "s"))
    weights = WeightLayout(units_from=0, input_axes=(InputAxis(0, 2, True),))
    keras_class = "Conv2D"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        shape = _strided(_image(ins[0]), params["strides"], params["filters"])
        _positive(params["filters"], "filters")
        return shape

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        k, filters = params["kernel_size"], params["filters"]
        return k * k * ins[0][-1] * filters + (filters if params["use_bias"] else 0)

    def keras_kwargs(self, params: Params) -> Params:
        kwargs = {key: params[key] for key in ("filters", "kernel_size", "strides", "use_bias")}
        return {**kwargs, "padding": "same"}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        k, filters = params["kernel_size"], params["filters"]
        kernel = np.zeros((k, k, channels, filters), np.float32)
        if identity:
            kernel[k // 2, k // 2] = np.eye(channels, filters, dtype=np.float32)
        return [kernel] + ([np.zeros(filters, np.float32)] if params["use_bias"] else [])

    def skip_pool(self, params: Params) -> tuple[str, Params] | None:
        stride = params["strides"]
        return ("avgpool", {"pool_size": stride, "strides": stride}) if stride > 1 else None


@register
class SepConv2D(Conv2D):
    name = "sep_conv2d"
    weights = WeightLayout(
        units_from=1, input_axes=(InputAxis(0, 2, False), InputAxis(1, 2, True))
    )  # [depthwise, pointwise, bias]
    keras_class = "SeparableConv2D"

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        k, filters, cin = params["kernel_size"], params["filters"], ins[0][-1]
        return k * k * cin + cin * filters + (filters if params["use_bias"] else 0)

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        k, filters = params["kernel_size"], params["filters"]
        depthwise = np.zeros((k, k, channels, 1), np.float32)
        depthwise[k // 2, k // 2] = 1.0
        pointwise = np.zeros((1, 1, channels, filters), np.float32)
        if identity:
            pointwise[0, 0] = np.eye(channels, filters, dtype=np.float32)
        bias = [np.zeros(filters, np.float32)] if params["use_bias"] else []
        return [depthwise, pointwise] + bias


@register
class Dense(LayerType):
    name = "dense"
    defaults = {"units": None, "use_bias": True}
    channels = PRODUCE
    consumes = True
    width_param = "units"
    weights = WeightLayout(units_from=0, input_axes=(InputAxis(0, 0, True),))
    keras_class = "Dense"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        _flat(ins[0])
        return (_positive(params["units"], "units"),)

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        units = params["units"]
        return ins[0][-1] * units + (units if params["use_bias"] else 0)

    def keras_kwargs(self, params: Params) -> Params:
        return {"units": params["units"], "use_bias": params["use_bias"]}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        units = params["units"]
        kernel = np.eye(channels, units, dtype=np.float32) * np.float32(identity)
        return [kernel] + ([np.zeros(units, np.float32)] if params["use_bias"] else [])


@register
class Output(Dense):
    """The network's last layer: a dense layer with bias and an activation."""

    name = "output"
    defaults = {"units": None, "activation": "softmax"}
    channels = FIXED
    weights = WeightLayout(input_axes=(InputAxis(0, 0, True),))

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        return ins[0][-1] * params["units"] + params["units"]

    def keras_kwargs(self, params: Params) -> Params:
        return {"units": params["units"], "activation": params["activation"]}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        raise ValueError("A morphism cannot insert an 'output' layer.")


@register
class BatchNorm(LayerType):
    name = "batchnorm"
    weights = WeightLayout(channelwise=True)  # [gamma, beta, moving mean, moving variance]
    keras_class = "BatchNormalization"
    epsilon: ClassVar[float] = 1e-3

    def count_params(self, params: Params, ins: list[Shape]) -> int:
        return 4 * ins[0][-1]

    def keras_kwargs(self, params: Params) -> Params:
        return {"momentum": 0.9, "epsilon": self.epsilon}

    def initial_weights(self, params: Params, channels: int, identity: bool) -> list[np.ndarray]:
        # gamma 1, beta 0, moving mean 0, moving variance 1 - epsilon: identity in inference
        if not identity:
            raise ValueError("A batchnorm layer cannot start with a zero output.")
        variance = np.full(channels, 1.0 - self.epsilon, np.float32)
        ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        return [ones, zeros, zeros.copy(), variance]


# ---------------------------------------------------------------------- channel-wise
@register
class ReLU(LayerType):
    name = "relu"
    sign = NON_NEGATIVE
    keras_class = "ReLU"


@register
class Dropout(LayerType):
    name = "dropout"
    defaults = {"rate": 0.25}
    sign = KEPT
    keras_class = "Dropout"

    def keras_kwargs(self, params: Params) -> Params:
        return {"rate": params["rate"]}


@register
class MaxPool(LayerType):
    name = "maxpool"
    defaults = {"pool_size": 2, "strides": 2}
    sign = KEPT
    label_params = (("pool_size", "p"), ("strides", "s"))
    keras_class = "MaxPooling2D"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        return _strided(_image(ins[0]), params["strides"], ins[0][2])

    def keras_kwargs(self, params: Params) -> Params:
        return {"pool_size": params["pool_size"], "strides": params["strides"], "padding": "same"}

    def skip_pool(self, params: Params) -> tuple[str, Params] | None:
        return (self.name, {"pool_size": params["pool_size"], "strides": params["strides"]})


@register
class AvgPool(MaxPool):
    name = "avgpool"
    keras_class = "AveragePooling2D"


@register
class GlobalAvgPool(LayerType):
    name = "gap"
    sign = KEPT
    keras_class = "GlobalAveragePooling2D"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        return (_image(ins[0])[2],)


@register
class Flatten(LayerType):
    name = "flatten"
    channels = FIXED
    sign = KEPT
    keras_class = "Flatten"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        return (math.prod(ins[0]),)


# ---------------------------------------------------------------------- merges
@register
class Add(LayerType):
    name = "add"
    arity = "many"
    sign = KEPT
    keras_class = "Add"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        if any(s != ins[0] for s in ins):
            raise ValueError(f"add needs equal input shapes. Received: {ins}")
        return ins[0]


@register
class Concat(LayerType):
    name = "concat"
    arity = "many"
    channels = CONCAT
    sign = KEPT
    keras_class = "Concatenate"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        first = ins[0]
        if any(s[:-1] != first[:-1] for s in ins):
            raise ValueError(f"concat needs equal shapes but the last axis. Received: {ins}")
        return first[:-1] + (sum(s[-1] for s in ins),)
