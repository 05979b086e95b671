import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automl.engine.settings import SearchSettings
from automl.graph.architecture import ArchitectureGraph, Node
from automl.graph.seeds import linear, mlp, resnet_cnn, small_cnn
from automl.morphism.area import effective_area
from automl.morphism.operators import (
    add_skip,
    apply_op,
    apply_ops,
    concat_skip,
    deepen,
    random_children,
    widen,
)

CAP = 30_000  # parameters; keeps the property tests fast


def branchy_cnn(width: int = 4) -> ArchitectureGraph:
    """A CNN with BN, a Concatenate of two branches, pooling and an Add after the concat."""
    w = width
    nodes = [
        Node(0, "input", {"shape": [8, 8, 1]}),
        Node(1, "conv2d", {"filters": w}, (0,)),
        Node(2, "batchnorm", {}, (1,)),
        Node(3, "relu", {}, (2,)),
        Node(4, "conv2d", {"filters": w}, (3,)),
        Node(5, "relu", {}, (4,)),
        Node(6, "sep_conv2d", {"filters": w + 1}, (3,)),
        Node(7, "batchnorm", {}, (6,)),
        Node(8, "concat", {}, (5, 7)),
        Node(9, "maxpool", {}, (8,)),
        Node(10, "conv2d", {"filters": 2 * w + 1, "kernel_size": 1}, (9,)),
        Node(11, "batchnorm", {}, (10,)),
        Node(12, "add", {}, (11, 9)),
        Node(13, "relu", {}, (12,)),
        Node(14, "gap", {}, (13,)),
        Node(15, "dropout", {"rate": 0.5}, (14,)),
        Node(16, "output", {"units": 5, "activation": "linear"}, (15,)),
    ]
    return ArchitectureGraph(nodes)


def seed_graph(kind: str, width: int, depth: int) -> ArchitectureGraph:
    if kind == "small_cnn":
        return small_cnn((8, 8, 1), 5, "linear", width=width, blocks=2, convs_per_block=depth)
    if kind == "resnet_cnn":
        return resnet_cnn((8, 8, 1), 5, "linear", width=width, stages=2)
    if kind == "branchy_cnn":
        return branchy_cnn(width)
    if kind == "linear":
        return linear((6,), 3, "linear")
    return mlp((6,), 3, "linear", width=width, layers=depth)


def randomize(model, rng) -> None:
    """Random (not default) weights, with non-trivial BatchNorm moving statistics."""
    from automl.graph.builder import graph_layers

    for layer in graph_layers(model).values():
        arrays = layer.get_weights()
        if not arrays:
            continue
        if type(layer).__name__ == "BatchNormalization":
            c = arrays[0].shape[0]
            arrays = [
                rng.uniform(0.5, 1.5, c),
                rng.normal(0, 0.3, c),
                rng.normal(0, 0.3, c),
                rng.uniform(0.5, 2.0, c),
            ]
        else:
            arrays = [
                rng.normal(0, 1 / np.sqrt(np.prod(a.shape[:-1])), a.shape)
                if a.ndim > 1
                else rng.normal(0, 0.2, a.shape)
                for a in arrays
            ]
        layer.set_weights([a.astype("float32") for a in arrays])


def morph(graph: ArchitectureGraph, rng, steps: int) -> ArchitectureGraph:
    for _ in range(steps):
        children = random_children(graph, rng, n=4, max_model_size=CAP)
        if not children:
            break
        graph = children[int(rng.integers(len(children)))]
    return graph


def assert_function_preserved(
    parent_graph, child_graph, rng, parent_model=None, inputs=None, atol=1e-4
):
    """The child, given its parent's weights, computes the parent's function on random
    inputs (`inputs(rng)`, or normal floats of the input shape)."""
    from automl.graph.builder import build_model
    from automl.morphism.weights import inherit_weights

    if parent_model is None:
        parent_model = build_model(parent_graph)
        randomize(parent_model, rng)
    child_model = build_model(child_graph)
    inherit_weights(parent_model, parent_graph, child_model, child_graph)
    if inputs is None:
        x = rng.normal(size=(4, *parent_graph.input_shape)).astype("float32")
    else:
        x = inputs(rng)
    expected = np.asarray(parent_model(x, training=False))
    got = np.asarray(child_model(x, training=False))
    assert np.std(expected) > 1e-3  # the comparison is not trivial
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)
    assert child_model.count_params() == child_graph.count_params()
    return child_model


# ---------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["small_cnn", "resnet_cnn", "branchy_cnn", "mlp", "linear"]),
    width=st.integers(4, 8),
    depth=st.integers(1, 2),
    steps=st.integers(1, 10),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_morphisms_preserve_function(kind, width, depth, steps, seed):
    rng = np.random.default_rng(seed)
    parent = seed_graph(kind, width, depth)
    child = morph(parent, rng, steps)
    assert len(child.history) >= 1 or not random_children(parent, rng, max_model_size=CAP)
    assert_function_preserved(parent, child, rng)


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(["small_cnn", "resnet_cnn", "branchy_cnn", "mlp"]),
    steps=st.integers(1, 10),
    seed=st.integers(0, 2**31 - 1),
)
def test_replaying_history_reproduces_graph(kind, steps, seed):
    parent = seed_graph(kind, 4, 1)
    child = morph(parent, np.random.default_rng(seed), steps)
    replayed = apply_ops(parent, child.history)
    assert replayed.key() == child.key()
    assert replayed.to_dict() == child.to_dict()
    again = ArchitectureGraph.from_json(child.to_json())  # history is JSON-able
    assert apply_ops(parent, again.history).key() == child.key()


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["small_cnn", "mlp"]), seed=st.integers(0, 2**31 - 1))
def test_intermediate_parent_with_history(kind, seed):
    """A child of a child inherits from its (already morphed) parent."""
    rng = np.random.default_rng(seed)
    grandparent = seed_graph(kind, 4, 1)
    parent = morph(grandparent, rng, 2)
    child = morph(parent, rng, 3)
    assert_function_preserved(parent, child, rng)


# ---------------------------------------------------------------------- operators
def test_each_morphism_keeps_ids_and_adds_fresh_ones():
    graph = small_cnn((8, 8, 1), 5, width=4)
    child = deepen(graph, 3, "conv_block", kernel_size=5)
    assert set(graph.nodes) < set(child.nodes)
    assert sorted(set(child.nodes) - set(graph.nodes)) == [graph.next_id + i for i in range(3)]
    assert child.history == [{"op": "deepen", "after": 3, "layer": "conv_block", "kernel_size": 5}]
    assert child.node(4).inputs == (graph.next_id + 2,)
    skip = add_skip(graph, 3, 9)  # across a max pooling: the branch pools too
    types = [skip.node(i).type for i in sorted(set(skip.nodes) - set(graph.nodes))]
    assert types == ["maxpool", "conv2d", "add"]
    skip = concat_skip(graph, 0, 6)
    types = [skip.node(i).type for i in sorted(set(skip.nodes) - set(graph.nodes))]
    assert types == ["concat", "conv2d"]
    assert skip.shape(graph.next_id) == (8, 8, 5)


def test_residual_block_grows_a_linear_model_into_a_nonlinear_one():
    from automl.morphism.area import non_negative

    graph = linear((6,), 3, "linear")
    assert [graph.node(i).type for i in graph.order] == ["input", "output"]
    child = deepen(graph, 0, "residual")  # after the input, which may be negative
    new = sorted(set(child.nodes) - set(graph.nodes))
    assert [child.node(i).type for i in new] == ["dense", "relu", "dense", "add"]
    assert child.node(new[-1]).inputs == (0, new[2])  # x + dense(relu(dense(x)))
    assert not non_negative(graph)[0]  # a plain ReLU could not go there
    rng = np.random.default_rng(3)
    model = assert_function_preserved(graph, child, rng)
    x = rng.normal(size=(64, 6)).astype("float32")
    # the block's last dense starts at zero; once it is not zero, the model is not linear
    from automl.graph.builder import graph_layers, layer_name

    last = graph_layers(model)[layer_name(child.node(new[2]))]
    assert not np.any(last.get_weights()[0])
    last.set_weights([np.ones_like(a) for a in last.get_weights()])
    y1, y2 = np.asarray(model(x, training=False)), np.asarray(model(-x, training=False))
    y0 = np.asarray(model(0 * x, training=False))
    assert not np.allclose(y1 + y2, 2 * y0, atol=1e-3)  # not linear any more (relu(x) + relu(-x))
    widened = widen(child, new[0], rng=rng)  # the block's hidden layer can grow
    assert widened.node(new[0]).params["units"] == 12
    assert_function_preserved(child, widened, rng)


def test_widen_through_concat_shifts_channel_offsets():
    graph = branchy_cnn(4)  # concat(relu 5: 4 channels, bn 7: 5 channels) -> 9 channels
    child = widen(graph, 6, width=7, copy_from=[0, 3])  # the concat's second input
    area = effective_area(graph, 6, [0, 1, 2, 3, 4, 0, 3])
    assert area.maps[8] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 7]  # offset 4
    assert area.producers == [6, 10]  # conv 10 grows too: it is added to the concat output
    assert area.consumers == [10, 16]  # conv 10 and the output layer
    assert child.shape(8) == (8, 8, 11) and child.shape(12) == (4, 4, 11)
    assert child.node(10).params["filters"] == 11
    assert_function_preserved(graph, child, np.random.default_rng(0))
    first = widen(graph, 4, width=6, copy_from=[1, 1])  # the concat's first input
    assert first.shape(8) == (8, 8, 11)
    assert_function_preserved(graph, first, np.random.default_rng(1))


def test_widen_through_add_widens_every_branch():
    graph = resnet_cnn((8, 8, 1), 5, width=4, stages=1)
    child = widen(graph, 7, rng=np.random.default_rng(0))  # second conv of the block
    widened = [i for i in graph.nodes if graph.node(i).width != child.node(i).width]
    assert widened == [1, 7]  # the stem shares the channels through the Add
    assert_function_preserved(graph, child, np.random.default_rng(2))


def test_random_children_respects_max_model_size(rng):
    graph = small_cnn((8, 8, 1), 5, width=8)
    size = graph.count_params()
    children = random_children(graph, rng, n=8, max_model_size=size + 200)
    assert all(c.count_params() <= size + 200 for c in children)
    assert len({c.key() for c in children}) == len(children)
    assert random_children(graph, rng, n=8, max_model_size=size - 1) == []
    assert len(random_children(graph, rng, n=8)) >= 6


def test_mlp_gets_no_skip_connections(rng):
    graph = mlp((6,), 3, width=4)
    ops = {c.history[-1]["op"] for _ in range(5) for c in random_children(graph, rng)}
    assert ops == {"deepen", "widen"}


def test_invalid_operations_raise_clear_errors():
    graph = small_cnn((8, 8, 1), 5, width=4)
    with pytest.raises(ValueError, match="'op' in"):
        apply_op(graph, {"op": "shrink", "node": 1})
    with pytest.raises(ValueError, match="Unknown arguments"):
        apply_op(graph, {"op": "widen", "node": 1, "units": 3})
    with pytest.raises(ValueError, match="node id of the graph"):
        widen(graph, 99)
    with pytest.raises(ValueError, match="can be widened"):
        widen(graph, graph.output_id)
    with pytest.raises(ValueError, match="width must exceed"):
        widen(graph, 1, width=4)
    with pytest.raises(ValueError, match="copy_from needs 2"):
        widen(graph, 1, width=6, copy_from=[0, 9])
    with pytest.raises(ValueError, match="non-negative"):
        deepen(graph, 1, "relu")  # after a conv, before BN
    with pytest.raises(ValueError, match="dense part"):
        deepen(graph, 3, "dense")
    with pytest.raises(ValueError, match="image tensor"):
        deepen(graph, graph.output_id - 1, "conv2d")
    with pytest.raises(ValueError, match="kernel_size"):
        deepen(graph, 3, "conv2d", kernel_size=2)
    with pytest.raises(ValueError, match="output layer"):
        deepen(graph, graph.output_id, "dense")
    with pytest.raises(ValueError, match="not reachable"):
        add_skip(graph, 6, 3)
    with pytest.raises(ValueError, match="image tensors"):
        concat_skip(graph, 3, graph.output_id - 2)
    flat = ArchitectureGraph.chain(
        (4, 4, 1), [("conv2d", {"filters": 2}), ("flatten", {}), ("output", {"units": 2})]
    )
    with pytest.raises(ValueError, match="flatten"):
        widen(flat, 1)
    into_input = ArchitectureGraph(
        [
            Node(0, "input", {"shape": [4, 4, 2]}),
            Node(1, "conv2d", {"filters": 2}, (0,)),
            Node(2, "add", {}, (1, 0)),
            Node(3, "gap", {}, (2,)),
            Node(4, "output", {"units": 2}, (3,)),
        ]
    )
    with pytest.raises(ValueError, match="width cannot change"):
        widen(into_input, 1)


# ---------------------------------------------------------------------- weights
def test_inserted_batchnorm_is_identity_in_inference(rng):
    graph = mlp((6,), 3, "linear", width=4, layers=1)
    child = deepen(deepen(graph, 1, "batchnorm"), 0, "batchnorm")
    assert_function_preserved(graph, child, rng)


def test_inherit_from_saved_parent_with_preprocessing(tmp_path, rng):
    import keras

    from automl.graph.builder import build_model
    from automl.morphism.weights import inherit_weights

    graph = small_cnn((8, 8, 1), 5, "linear", width=4, blocks=1)
    inputs = keras.Input((8, 8, 1))
    parent = build_model(graph, inputs, keras.layers.Rescaling(0.5, name="scale")(inputs))
    randomize(parent, rng)
    parent.save(tmp_path / "parent.keras")
    parent = keras.models.load_model(tmp_path / "parent.keras")
    child_graph = morph(graph, rng, 4)
    inputs = keras.Input((8, 8, 1))
    child = build_model(child_graph, inputs, keras.layers.Rescaling(0.5, name="scale")(inputs))
    inherit_weights(parent, graph, child, child_graph)
    x = rng.normal(size=(3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(child(x)), np.asarray(parent(x)), atol=1e-4)


def test_noise_breaks_symmetry_but_stays_small(rng):
    from automl.graph.builder import build_model, graph_layers
    from automl.morphism.weights import inherit_weights

    graph = mlp((6,), 3, "linear", width=4, layers=1)
    child_graph = widen(graph, 1, width=8, copy_from=[0, 1, 2, 3])
    parent = build_model(graph)
    randomize(parent, rng)
    child = build_model(child_graph)
    inherit_weights(parent, graph, child, child_graph, noise_std=1e-3, rng=rng)
    kernel = graph_layers(child)["n1_dense"].get_weights()[0]
    assert not np.allclose(kernel[:, :4], kernel[:, 4:])
    assert np.abs(kernel[:, :4] - kernel[:, 4:]).max() < 1e-2
    x = rng.normal(size=(3, 6)).astype("float32")
    assert np.abs(np.asarray(child(x)) - np.asarray(parent(x))).max() < 0.05


WIDEN_TOLERANCE = 0.02  # max |child - parent| output of split copies with noise 0.01


@pytest.mark.parametrize(
    "mode, noise",
    [
        ("split", 0.0),
        ("split", 0.01),
        ("zero", 0.0),
        (SearchSettings().widen_mode, SearchSettings().widen_noise),  # the search's
    ],
)
def test_widened_copies_learn_apart_with_noise_or_zero_outgoing_weights(rng, mode, noise):
    """Split copies get equal gradients: without noise they stay copies under training
    (dropout off, as in the convolutional blocks, where nothing else tells them apart).
    Copies with zero outgoing weights keep the function exactly, whatever the noise."""
    import keras

    from automl.graph.builder import build_model, graph_layers
    from automl.morphism.weights import inherit_weights

    graph = mlp((6,), 3, "linear", width=4, layers=1, dropout=0.0)
    child_graph = widen(graph, 1, width=8, copy_from=[0, 1, 2, 3])
    parent = build_model(graph)
    randomize(parent, rng)
    child = build_model(child_graph)
    inherit_weights(parent, graph, child, child_graph, rng=rng, widen_noise=noise, widen_mode=mode)
    x = rng.normal(size=(64, 6)).astype("float32")
    tolerance = WIDEN_TOLERANCE if mode == "split" else 1e-5
    assert np.abs(np.asarray(child(x)) - np.asarray(parent(x))).max() <= tolerance
    child.compile(keras.optimizers.Adam(1e-2), "mse")
    child.fit(x, rng.normal(size=(64, 3)).astype("float32"), epochs=3, batch_size=16, verbose=0)
    kernel = graph_layers(child)["n1_dense"].get_weights()[0]
    gap = np.abs(kernel[:, :4] - kernel[:, 4:]).max()
    if mode == "split" and not noise:
        assert gap < 1e-6  # copies after 3 epochs of Adam (up to the rounding of threaded sums)
    else:
        assert gap > 1e-3  # the copies moved apart


def test_history_mismatch_is_refused(rng):
    from automl.graph.builder import build_model
    from automl.morphism.weights import inherit_weights

    graph = mlp((6,), 3, width=4)
    other = deepen(graph, 3, "dense")
    parent_graph = widen(graph, 1)
    with pytest.raises(ValueError, match="history does not start"):
        inherit_weights(build_model(parent_graph), parent_graph, build_model(other), other)
    wider = widen(parent_graph, 1)
    with pytest.raises(ValueError, match="widen_mode must be one of .*received 'copy'"):
        inherit_weights(
            build_model(parent_graph), parent_graph, build_model(wider), wider, widen_mode="copy"
        )


def test_operators_import_without_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, automl.morphism, automl.morphism.operators, automl.morphism.weights;"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
