import math

import keras
import numpy as np
import pytest

from automl.graph.builder import build_model
from automl.graph.seeds import small_cnn
from automl.search.screening import (
    kernel_from_codes,
    log_det,
    naswot_kernel,
    naswot_score,
    relu_outputs,
    score_graphs,
)


def seed_graph(width: int = 4):
    return small_cnn((8, 8, 1), 10, width=width, blocks=2, convs_per_block=1)


@pytest.fixture
def batch(rng):
    return rng.random((16, 8, 8, 1)).astype("float32")


def fresh_model(graph, seed: int = 0):
    keras.utils.set_random_seed(seed)
    return build_model(graph)


def test_kernel_from_codes_matches_brute_force_hamming(rng):
    codes = rng.integers(0, 2, size=(7, 23))
    kernel = kernel_from_codes(codes)
    n, units = codes.shape
    expected = np.array(
        [[units - np.sum(codes[i] != codes[j]) for j in range(n)] for i in range(n)]
    )
    np.testing.assert_array_equal(kernel, expected)
    np.testing.assert_array_equal(np.diag(kernel), np.full(n, units))


def test_log_det_of_singular_kernel_is_minus_inf():
    assert log_det(np.ones((3, 3))) == -math.inf
    assert log_det(np.eye(3) * 2) == pytest.approx(3 * math.log(2))


def test_relu_outputs_counts_every_relu_layer():
    graph = seed_graph()
    model = fresh_model(graph)
    relus = sum(node.type == "relu" for node in graph.nodes.values())
    assert relus == 2
    assert len(relu_outputs(model)) == relus


def test_relu_outputs_sees_fused_and_bare_relus():
    x = keras.Input((4,))
    h = keras.layers.Dense(3, activation="relu")(x)
    h = keras.layers.Activation("relu")(keras.layers.Dense(5)(h))
    h = keras.ops.relu(keras.layers.Dense(2)(h))
    h = keras.layers.LeakyReLU()(h)  # not a ReLU: negative inputs are not zeroed
    model = keras.Model(x, keras.layers.Dense(1)(h))
    assert [tuple(t.shape[1:]) for t in relu_outputs(model)] == [(3,), (5,), (2,)]


def test_score_is_finite_for_a_seed_cnn(batch):
    model = fresh_model(seed_graph())
    kernel, units = naswot_kernel(model, batch)
    # two ReLU layers: 8x8x4 before the first pooling, 4x4x8 after it
    assert units == 8 * 8 * 4 + 4 * 4 * 8
    np.testing.assert_array_equal(np.diag(kernel), np.full(len(batch), units))
    score = naswot_score(model, batch)
    assert math.isfinite(score)


def test_score_is_deterministic_for_a_seed(batch):
    graphs = [seed_graph(4), seed_graph(6)]
    times = []
    first = score_graphs(graphs, batch, seed=3, times=times)
    second = score_graphs(graphs, batch, seed=3)
    assert first == second
    assert all(math.isfinite(s) for s in first)
    assert len(times) == 2 and all(t["build_s"] > 0 and t["score_s"] > 0 for t in times)
    model = fresh_model(graphs[0], seed=3)
    assert naswot_score(model, batch) == first[0] == naswot_score(model, batch)


def test_identical_inputs_give_a_singular_kernel(batch):
    model = fresh_model(seed_graph())
    same = np.repeat(batch[:1], len(batch), axis=0)
    kernel, units = naswot_kernel(model, same)
    np.testing.assert_array_equal(kernel, np.full(kernel.shape, units))
    assert naswot_score(model, same) == -math.inf


def test_dead_relus_score_lower_than_the_normal_init(batch):
    model = fresh_model(seed_graph())
    normal = naswot_score(model, batch)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):  # every ReLU follows a conv and BN
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.full_like(bias, -1e4)])
    kernel, units = naswot_kernel(model, batch)
    np.testing.assert_array_equal(kernel, np.full(kernel.shape, units))  # every code is 0
    dead = naswot_score(model, batch)
    assert dead < normal
    assert dead == -math.inf


def test_model_without_relu_is_refused(batch):
    x = keras.Input((8, 8, 1))
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match="no ReLU"):
        naswot_score(model, batch)
