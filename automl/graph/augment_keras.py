"""The Keras layer of the "augment" layer type: random image augmentation while training.

`ImageAugment` moves each image of a batch by its own random translation, rotation,
zoom and (optionally) horizontal flip, resampled bilinearly in one gather, then scales
its contrast about each channel's mean. In inference (`training` false or absent) it
returns its input unchanged, and it has no weights.

It is written with `keras.ops` and `keras.random` only, with a `SeedGenerator`, so it
runs inside the compiled (XLA, `jax.jit`) train step of every backend. Keras's own
`RandomTranslation`, `RandomRotation` and `RandomZoom` mark themselves as not
XLA-compilable, which would make a JAX model train without `jax.jit`, and
`RandomContrast` clips to a value range, which the normalised images inside an automl
model do not have. Pixels that come from outside the image are 0: the channel's mean
after the model's normalisation.

Registered as serializable (package "automl"), so a saved model loads after
`import automl.graph.augment_keras`. `automl.graph.augment` imports this module only
when it makes a Keras layer.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="automl")
class ImageAugment(keras.layers.Layer):
    """Random translation, rotation, zoom, contrast and horizontal flip, in training only.

    (B, H, W, C) -> (B, H, W, C). Each image draws its own transform: a shift of up to
    `translate` of the height and width, a rotation of up to `rotate` of a full turn, a
    scale in [1 - zoom, 1 + zoom], a contrast factor in [1 - contrast, 1 + contrast]
    and, with `flip`, a left-right mirror with probability 1/2.

    Args:
        translate: largest shift, as a fraction of the image's height and width.
        rotate: largest rotation, as a fraction of a full turn (0.05: 18 degrees).
        zoom: largest relative change of scale.
        contrast: largest relative change of contrast.
        flip: mirror half the images left to right (not for digits or text).
        seed: seed of the layer's `SeedGenerator`; None for a random one.
    """

    def __init__(
        self,
        translate: float = 0.1,
        rotate: float = 0.05,
        zoom: float = 0.1,
        contrast: float = 0.1,
        flip: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.translate = float(translate)
        self.rotate = float(rotate)
        self.zoom = float(zoom)
        self.contrast = float(contrast)
        self.flip = bool(flip)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = ops.cast(inputs, "float32")
        draws = keras.random.uniform(
            (ops.shape(x)[0], 6), minval=-1.0, maxval=1.0, seed=self.generator
        )
        if self.translate or self.rotate or self.zoom or self.flip:
            x = self._warp(x, draws)
        if self.contrast:
            factor = ops.reshape(1.0 + self.contrast * draws[:, 4], (-1, 1, 1, 1))
            mean = ops.mean(x, axis=(1, 2), keepdims=True)
            x = (x - mean) * factor + mean
        return ops.cast(x, inputs.dtype)

    def _warp(self, x, draws):
        """Each output pixel read bilinearly at its transformed place in the input."""
        height, width, channels = x.shape[1:]
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        centre_row, centre_col = (height - 1) / 2.0, (width - 1) / 2.0
        rows = ops.convert_to_tensor((rows - centre_row).reshape(1, -1), "float32")
        cols = ops.convert_to_tensor((cols - centre_col).reshape(1, -1), "float32")
        shift_row = draws[:, 0:1] * (self.translate * height)
        shift_col = draws[:, 1:2] * (self.translate * width)
        angle = draws[:, 2:3] * (self.rotate * 2.0 * math.pi)
        scale = 1.0 + draws[:, 3:4] * self.zoom
        if self.flip:
            cols = cols * ops.where(draws[:, 5:6] < 0.0, -1.0, 1.0)
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        source_row = cos * rows - sin * cols + (centre_row - shift_row)  # (B, H * W)
        source_col = sin * rows + cos * cols + (centre_col - shift_col)
        row0, col0 = ops.floor(source_row), ops.floor(source_col)
        frac_row, frac_col = source_row - row0, source_col - col0
        pixels = height * width
        flat = ops.reshape(x, (-1, channels))  # (B * H * W, C)
        offset = ops.expand_dims(ops.arange(ops.shape(x)[0], dtype="int32") * pixels, 1)
        out = 0.0
        for d_row, d_col in ((0, 0), (0, 1), (1, 0), (1, 1)):
            row, col = row0 + d_row, col0 + d_col
            weight = (frac_row if d_row else 1.0 - frac_row) * (
                frac_col if d_col else 1.0 - frac_col
            )
            inside = (row >= 0) & (row <= height - 1) & (col >= 0) & (col <= width - 1)
            weight = ops.where(inside, weight, 0.0)
            row = ops.cast(ops.clip(row, 0, height - 1), "int32")
            col = ops.cast(ops.clip(col, 0, width - 1), "int32")
            index = ops.reshape(offset + row * width + col, (-1,))
            out = out + ops.take(flat, index, axis=0) * ops.reshape(weight, (-1, 1))
        return ops.reshape(out, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {
            "translate": self.translate,
            "rotate": self.rotate,
            "zoom": self.zoom,
            "contrast": self.contrast,
            "flip": self.flip,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
