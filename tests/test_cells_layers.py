"""A reusable layer harness run on every op and cell layer of automl.cells."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from automl.cells import Cell, MixedOp, ResidualReduction, SearchCell
from automl.cells.ops import DARTS_OPS, NB201_OPS, OPS, FactorizedReduce, Pool, Zero, build_op

CHANNELS = 4


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def check_layer(layer, inputs, output_shape, trainable, non_trainable):
    """Config and serialization round-trips, output shape, weight counts, one training step.

    Args:
        layer: an unbuilt layer.
        inputs: an array or a list of arrays to call it on.
        output_shape: the expected output shape.
        trainable: expected number of trainable weight tensors.
        non_trainable: expected number of non-trainable weight tensors.
    """
    out = layer(inputs, training=False)
    assert tuple(out.shape) == tuple(output_shape)
    assert len(layer.trainable_weights) == trainable
    assert len(layer.non_trainable_weights) == non_trainable

    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    json.dumps(serialized)  # plain names and numbers only
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(restored) is type(layer)
    restored(inputs, training=False)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(restored(inputs, training=False), out, atol=1e-5)

    before = [np.array(w) for w in layer.trainable_weights]
    with tf.GradientTape() as tape:
        out = layer(inputs, training=True)
        # A random target: a constant one gives no gradient through a batch norm
        # without affine parameters (its output's batch statistics are fixed).
        target = np.random.default_rng(1).normal(size=tuple(out.shape)).astype("float32")
        loss = tf.reduce_mean(tf.square(out - target))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads)
    if grads:
        keras.optimizers.SGD(0.1).apply(grads, layer.trainable_weights)
        after = [np.array(w) for w in layer.trainable_weights]
        assert any(not np.allclose(a, b) for a, b in zip(after, before, strict=True))
    assert np.isfinite(float(loss))


# (trainable, non-trainable) weight tensors of each op with affine batch norms.
OP_WEIGHTS = {
    "none": (0, 0),
    "max_pool_3x3": (0, 0),
    "avg_pool_3x3": (0, 0),
    "skip_connect": (0, 0),
    "sep_conv_3x3": (8, 4),
    "sep_conv_5x5": (8, 4),
    "dil_conv_3x3": (4, 2),
    "dil_conv_5x5": (4, 2),
    "nor_conv_1x1": (3, 2),
    "nor_conv_3x3": (3, 2),
}


def test_registry_covers_both_spaces():
    assert set(DARTS_OPS) | set(NB201_OPS) == set(OPS) == set(OP_WEIGHTS)
    with pytest.raises(ValueError, match="Unknown op"):
        build_op("conv_7x7", CHANNELS)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", sorted(OPS))
def test_op_harness(name, stride):
    layer = build_op(name, CHANNELS, stride)
    trainable, non_trainable = OP_WEIGHTS[name]
    if name == "skip_connect" and stride == 2:  # FactorizedReduce
        trainable, non_trainable = 4, 2
    size = 8 // stride
    x = _random((2, 8, 8, CHANNELS))
    check_layer(layer, x, (2, size, size, CHANNELS), trainable, non_trainable)


@pytest.mark.parametrize("name", sorted(OPS))
def test_odd_sizes_halve_to_the_same_shape(name):
    out = build_op(name, CHANNELS, 2)(_random((1, 7, 7, CHANNELS)))
    assert tuple(out.shape) == (1, 4, 4, CHANNELS)


def test_helper_layers_harness():
    x = _random((2, 8, 8, CHANNELS))
    check_layer(Zero(2), x, (2, 4, 4, CHANNELS), 0, 0)
    check_layer(Pool("avg", 3, 1), x, (2, 8, 8, CHANNELS), 0, 0)
    check_layer(FactorizedReduce(6, affine=False), x, (2, 4, 4, 6), 2, 2)
    check_layer(ResidualReduction(8), x, (2, 4, 4, 8), 7, 4)


def test_pools_ignore_padding():
    ones = np.ones((1, 5, 5, 1), "float32")
    np.testing.assert_allclose(Pool("avg", 3, 2)(ones), np.ones((1, 3, 3, 1)), rtol=1e-6)
    assert float(np.max(Pool("max", 3, 1)(-ones))) == -1.0


def test_factorized_reduce_sees_the_shifted_pixels():
    layer = FactorizedReduce(2)
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 1, 1, 0] = 1.0  # only the shifted conv (odd rows/columns) can see it
    layer.build(x.shape)
    layer.conv_a.kernel.assign(np.ones((1, 1, 1, 1)))
    layer.conv_b.kernel.assign(np.ones((1, 1, 1, 1)))
    raw = np.maximum(x, 0)
    conv_b_input = np.pad(raw, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:]
    assert conv_b_input[0, 0, 0, 0] == 1.0
    out = layer.conv_b(conv_b_input)
    assert float(out[0, 0, 0, 0]) == 1.0 and float(layer.conv_a(raw)[0, 0, 0, 0]) == 0.0


@pytest.mark.parametrize(
    ("space", "stride", "weights"),
    [("darts", 1, (12, 16)), ("darts", 2, (14, 18)), ("nb201", 1, (2, 6))],
)
def test_mixed_op_harness(space, stride, weights):
    num_ops = len(DARTS_OPS if space == "darts" else NB201_OPS)
    inputs = [_random((2, 8, 8, CHANNELS)), np.full((num_ops,), 1 / num_ops, "float32")]
    size = 8 // stride
    check_layer(MixedOp(CHANNELS, stride, space), inputs, (2, size, size, CHANNELS), *weights)


def test_mixed_op_gradients_reach_the_op_weights():
    layer = MixedOp(CHANNELS, 1, "darts")
    x = tf.constant(_random((2, 8, 8, CHANNELS)))
    weights = tf.Variable(np.full((8,), 1 / 8, "float32"))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(tf.square(layer([x, weights], training=True)))
    grad = tape.gradient(out, weights).numpy()
    assert grad[DARTS_OPS.index("none")] == 0.0
    assert np.all(np.delete(grad, DARTS_OPS.index("none")) != 0.0)


@pytest.mark.parametrize(
    ("kind", "reduction_prev", "shapes", "output_shape", "weights"),
    [
        ("normal", False, [(2, 8, 8, 12), (2, 8, 8, 16)], (2, 8, 8, 16), (170, 228)),
        ("reduction", False, [(2, 8, 8, 12), (2, 8, 8, 16)], (2, 4, 4, 16), (186, 244)),
        ("normal", True, [(2, 16, 16, 12), (2, 8, 8, 16)], (2, 8, 8, 16), (171, 228)),
    ],
)
def test_darts_search_cell_harness(kind, reduction_prev, shapes, output_shape, weights):
    cell = SearchCell(kind, CHANNELS, reduction_prev)
    assert cell.alpha_shape == (14, 8)
    inputs = [_random(s, i) for i, s in enumerate(shapes)] + [np.full((14, 8), 1 / 8, "float32")]
    check_layer(cell, inputs, output_shape, *weights)


def test_nb201_search_cell_harness():
    cell = SearchCell("nb201", CHANNELS)
    assert cell.alpha_shape == (6, 5)
    inputs = [_random((2, 8, 8, CHANNELS)), np.full((6, 5), 0.2, "float32")]
    check_layer(cell, inputs, (2, 8, 8, CHANNELS), 12, 36)


DARTS_CELL = (
    "|sep_conv_3x3~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|+"
    "|skip_connect~0|dil_conv_3x3~2|+|max_pool_3x3~0|skip_connect~2|"
)
NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.mark.parametrize(
    ("kind", "output_shape", "weights"),
    [("normal", (2, 8, 8, 16), (34, 18)), ("reduction", (2, 4, 4, 16), (42, 22))],
)
def test_darts_cell_harness(kind, output_shape, weights):
    inputs = [_random((2, 8, 8, 12)), _random((2, 8, 8, 16), 1)]
    check_layer(Cell(DARTS_CELL, kind, CHANNELS), inputs, output_shape, *weights)


@pytest.mark.parametrize(
    ("cell", "weights"),
    [(NB201_CELL, (9, 6)), ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", (0, 0))],
)
def test_nb201_cell_harness(cell, weights):
    check_layer(Cell(cell, "nb201", CHANNELS), _random((2, 8, 8, CHANNELS)), (2, 8, 8, 4), *weights)


def test_cell_rejects_bad_genotypes():
    with pytest.raises(ValueError, match="number of nodes"):
        Cell("|nor_conv_3x3~0|", "nb201", CHANNELS)
    with pytest.raises(ValueError, match="cannot read"):
        Cell("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "nb201", CHANNELS)
    with pytest.raises(ValueError, match="kind"):
        SearchCell("upsample", CHANNELS)
