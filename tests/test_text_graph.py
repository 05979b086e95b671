"""Text graphs: token inputs, the text layer types, the text seeds and their morphisms."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import test_morphism as morphism_tests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph, Node
from automl.graph.seeds import SEEDS, bag_linear, bag_mlp, conv_text, embed_pool, mlp, small_cnn
from automl.morphism.operators import (
    OPERATIONS,
    TEXT_OPERATIONS,
    apply_ops,
    deepen,
    deepen_error,
    random_children,
    random_op,
    widen,
)
from automl.morphism.text import text_branch

V, L = 50, 12  # vocabulary size, sequence length
CAP = 60_000
TEXT_SEEDS = ("bag_linear", "bag_mlp", "embed_pool", "conv_text")


def seed(name: str, **sizes) -> ArchitectureGraph:
    if name in ("bag_mlp", "embed_pool"):
        sizes = {"width": 6, **sizes}
    if name == "conv_text":
        sizes = {"width": 6, "filters": 5, "kernel_size": 3, **sizes}
    return SEEDS[name]((L,), 3, "linear", tokens=V, **sizes)


def tokens(rng, n: int = 6) -> np.ndarray:
    """Token ids as the data layer makes them: vocabulary ids, some OOV (1), then padding."""
    x = rng.integers(2, V, size=(n, L))
    x[rng.random((n, L)) < 0.1] = 1
    for row, length in zip(x, rng.integers(1, L + 1, size=n), strict=True):
        row[length:] = 0
    return x.astype("int32")


def bag_reference(x: np.ndarray, mode: str, vocab: int = V, idf=None) -> np.ndarray:
    counts = np.zeros((len(x), vocab))
    for row, ids in zip(counts, x, strict=True):
        np.add.at(row, np.where(ids >= vocab, 1, ids), 1.0)
    counts[:, 0] = 0.0
    values = np.minimum(counts, 1.0) if mode == "binary" else np.log1p(counts)
    if idf is not None:
        values = values * idf
    norm = np.sqrt(np.maximum((values**2).sum(1, keepdims=True), 1e-12))
    return values / norm


def assert_function_preserved(parent_graph, child_graph, rng, parent_model=None):
    return morphism_tests.assert_function_preserved(
        parent_graph, child_graph, rng, parent_model, inputs=tokens, atol=1e-5
    )


# ---------------------------------------------------------------------- graphs and seeds
@pytest.mark.parametrize("name", TEXT_SEEDS)
def test_seeds_build_and_count_params_like_keras(name, rng):
    import keras

    from automl.graph.builder import build_model

    graph = seed(name)
    model = build_model(graph, keras.Input((L,), dtype="int32"))
    assert model.count_params() == graph.count_params()
    assert build_model(graph).inputs[0].dtype == "int32"
    assert np.asarray(model(tokens(rng))).shape == (6, 3)
    assert graph.input_shape == (L,) and graph.shape(0) == (L,)
    assert isinstance(graph.shape(0), layers.TokenShape) and graph.shape(0).tokens == V


def test_seed_structure():
    def types(graph):
        return [graph.node(i).type for i in graph.order]

    assert types(seed("bag_linear")) == ["input", "bag", "output"]
    assert types(seed("bag_mlp")) == ["input", "bag", "dense", "relu", "dropout", "output"]
    assert types(embed_pool((L,), 3, tokens=V, dropout=0.1)) == [
        "input",
        "embedding",
        "gap1d",
        "dropout",
        "output",
    ]
    graph = conv_text((400,), 3, tokens=V, blocks=2)
    assert types(graph)[1:7] == ["embedding", "conv1d", "relu", "conv1d", "relu", "gmp1d"]
    assert graph.shape(1) == (256, 64)  # the first 256 tokens
    assert bag_linear((L,), 3, tokens=V, mode="sublinear").node(1).params["mode"] == "sublinear"
    with pytest.raises(ValueError, match="tokens"):
        bag_mlp((L,), 3)


def test_token_ids_go_only_into_bag_or_embedding():
    graph = seed("bag_linear")
    for layer_type, params in [
        ("dense", {"units": 3}),
        ("batchnorm", {}),
        ("relu", {}),
        ("dropout", {}),
        ("concat", {}),
        ("conv1d", {"filters": 2}),
    ]:
        nodes = [
            graph.node(0),
            Node(1, layer_type, params, (0,)),
            Node(2, "output", {"units": 2}, (1,)),
        ]
        with pytest.raises(ValueError, match="Node 1 .*token ids"):
            ArchitectureGraph(nodes)
    with pytest.raises(ValueError, match="token ids"):
        ArchitectureGraph([graph.node(0), Node(1, "output", {"units": 2}, (0,))])
    for layer in ("dense", "dense_block", "residual", "batchnorm", "relu", "dropout", "conv1d"):
        assert "token ids" in deepen_error(graph, 0, layer)
    assert deepen_error(graph, 0, "attention") is not None
    bag = next(i for i in graph.order if graph.node(i).type == "bag")
    for layer in ("relu", "batchnorm"):  # the identity forever after a bag: a wasted trial
        assert "would change nothing" in deepen_error(graph, bag, layer)
    assert deepen_error(graph, bag, "dropout") is None
    with pytest.raises(ValueError, match="sequence"):
        layers.get("gap1d").output_shape({}, [(4,)])
    with pytest.raises(ValueError, match="mode must be"):
        bag_linear((L,), 3, tokens=V, mode="tfidf")
    rng = np.random.default_rng(0)
    for _ in range(20):
        op = random_op(graph, "deepen", rng)
        assert op["after"] != 0


def test_token_shape_survives_pickle_and_json():
    graph = deepen(seed("conv_text"), 3, "attention")
    again = pickle.loads(pickle.dumps(graph))
    assert isinstance(again.shape(0), layers.TokenShape) and again.shape(0).tokens == V
    assert ArchitectureGraph.from_json(graph.to_json()).key() == graph.key() == again.key()
    plain = ArchitectureGraph.chain((L,), [("dense", {"units": 2}), ("output", {"units": 2})])
    assert "tokens" not in plain.node(0).params  # non-text graphs keep their keys


# ---------------------------------------------------------------------- keras layers
@pytest.mark.parametrize("mode", ["binary", "sublinear"])
def test_bag_matches_numpy(mode, rng):
    from automl.graph.text_keras import BagOfTokens

    x = tokens(rng, 8)
    x[0] = 0  # an all-padding row gives zeros
    x[1, :3] = [V + 5, 7, 7]  # an id beyond the vocabulary counts as out-of-vocabulary
    got = np.asarray(BagOfTokens(V, mode)(x))
    expected = bag_reference(x, mode)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not got[0].any() and not got[:, 0].any()
    np.testing.assert_allclose(np.linalg.norm(got[1:], axis=1), 1.0, atol=1e-6)


def test_bag_weighs_tokens_by_their_idf(rng):
    from automl.data.text import idf_knots
    from automl.graph.text_keras import BagOfTokens

    frequencies = sorted(rng.integers(2, 40, V - 2).tolist(), reverse=True)  # by rank
    exact = np.log((1 + 50) / (1 + np.asarray(frequencies, dtype=float))) + 1
    weights = np.concatenate([[0.0, 1.0], exact])  # padding, out of the vocabulary, tokens
    x = tokens(rng, 8)
    layer = BagOfTokens(V, "sublinear", idf=idf_knots(frequencies, 50))
    np.testing.assert_allclose(
        np.asarray(layer(x)), bag_reference(x, "sublinear", idf=weights), atol=1e-5
    )
    again = BagOfTokens.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(layer(x)), atol=1e-7)


def test_attention_starts_as_the_identity_and_counts_like_keras(rng):
    from automl.graph.text_keras import SelfAttention

    spec = layers.get("attention")
    for channels, heads in [(4, 2), (32, 4), (12, 1)]:
        layer = SelfAttention(heads)
        x = rng.normal(size=(2, 5, channels)).astype("float32")
        assert not np.allclose(np.asarray(layer(x)), x)  # random by default
        assert layer.count_params() == spec.count_params({"heads": heads}, [(5, channels)])
        arrays = spec.initial_weights({"heads": heads}, channels, identity=True)
        layer.set_weights(arrays)
        np.testing.assert_allclose(np.asarray(layer(x)), x, atol=1e-6)


def test_conv1d_starts_as_the_identity(rng):
    import keras

    spec = layers.get("conv1d")
    params = {**spec.defaults, "filters": 4, "kernel_size": 5}
    layer = spec.keras_layer(params, "n1_conv1d")
    x = rng.normal(size=(2, 7, 4)).astype("float32")
    layer(keras.ops.convert_to_tensor(x))
    layer.set_weights(spec.initial_weights(params, 4, identity=True))
    np.testing.assert_allclose(np.asarray(layer(x)), x, atol=1e-6)


def test_saved_text_model_loads_after_import_automl(tmp_path, rng):
    from automl.graph.builder import build_model

    graph = text_branch(seed("bag_linear", mode="sublinear"))
    graph = deepen(graph, graph.next_id - 3, "attention")  # after the embedding
    assert {"bag", "embedding", "attention"} <= {n.type for n in graph.nodes.values()}
    model = build_model(graph)
    morphism_tests.randomize(model, rng)
    model.save(tmp_path / "text.keras")
    x = tokens(rng)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, automl, keras;"
        f"m = keras.models.load_model({str(tmp_path / 'text.keras')!r});"
        f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}))))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.asarray(model(x)), atol=1e-5)


def test_text_layers_run_and_compile_on_jax(tmp_path):
    pytest.importorskip("jax")
    code = """
import os, numpy as np
os.environ["KERAS_BACKEND"] = "jax"
import jax, keras
from automl.graph.builder import build_model
from automl.graph.seeds import conv_text
from automl.morphism.operators import deepen
from automl.morphism.text import text_branch
from automl.graph.text_keras import BagOfTokens
assert keras.backend.backend() == "jax"
x = np.array([[3, 4, 4, 1, 0, 0], [0, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 9]], "int32")
bag = jax.jit(lambda t: BagOfTokens(10, "sublinear")(t))(x)
expected = np.zeros((3, 10)); expected[0, [3, 4, 1]] = np.log1p([1, 2, 1])
expected[2, [9, 8, 7, 6, 5]] = np.log1p([2, 1, 1, 1, 1])
expected /= np.maximum(np.linalg.norm(expected, axis=1, keepdims=True), 1e-6)
np.testing.assert_allclose(np.asarray(bag), expected, atol=1e-6)
graph = deepen(conv_text((6,), 2, tokens=10, width=4, filters=4), 1, "attention")
model = build_model(graph)
model.compile("adam", "sparse_categorical_crossentropy", jit_compile=True)
model.fit(x, np.array([0, 1, 1]), epochs=1, verbose=0)
assert np.isfinite(model.predict(x, verbose=0)).all()
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------- morphisms
TEXT_OPS = [
    ("conv_text", lambda g: deepen(g, 1, "conv1d", kernel_size=5)),
    ("conv_text", lambda g: deepen(g, 3, "conv1d_block", kernel_size=1)),
    ("conv_text", lambda g: deepen(g, 1, "attention")),
    ("conv_text", lambda g: deepen(g, 3, "attention")),
    ("embed_pool", lambda g: deepen(g, 1, "attention")),
    ("bag_linear", text_branch),
    ("bag_mlp", text_branch),
    ("conv_text", lambda g: widen(g, 1, width=9, copy_from=[0, 5, 5])),  # the embedding
    ("conv_text", lambda g: widen(g, 2, width=8, copy_from=[4, 0, 4])),  # the conv1d
    ("embed_pool", lambda g: widen(g, 1, rng=np.random.default_rng(1))),
    ("bag_mlp", lambda g: widen(widen(text_branch(g), 2, width=9), 6, width=40)),
]


@pytest.mark.parametrize("case", range(len(TEXT_OPS)))
@pytest.mark.parametrize("seed_value", [0, 1])
def test_each_text_morphism_preserves_function(case, seed_value):
    name, morph = TEXT_OPS[case]
    parent = seed(name)
    child = morph(parent)
    assert apply_ops(parent, child.history).key() == child.key()
    assert_function_preserved(parent, child, np.random.default_rng(seed_value))


def test_text_branch_structure_and_refusals():
    graph = seed("bag_mlp")
    child = text_branch(graph)
    new = sorted(set(child.nodes) - set(graph.nodes))
    assert [child.node(i).type for i in new] == ["embedding", "gap1d", "concat"]
    assert child.node(new[0]).params == {"tokens": V, "units": 32, "length": L}
    assert child.node(new[2]).inputs == (4, new[1])
    assert child.node(child.output_id).inputs == (new[2],)
    assert child.history[-1] == {"op": "text_branch", "units": 32, "length": 256}
    for refused in (child, seed("embed_pool"), mlp((6,), 3), small_cnn((8, 8, 1), 3)):
        with pytest.raises(ValueError, match="text"):
            text_branch(refused)
        assert random_op(refused, "text_branch", np.random.default_rng(0)) is None
    assert random_op(graph, "text_branch", np.random.default_rng(0))["op"] == "text_branch"


def test_widening_into_attention_is_refused_and_skipped():
    graph = deepen(seed("embed_pool"), 1, "attention")
    with pytest.raises(ValueError, match="attention"):
        widen(graph, 1)
    assert random_op(graph, "widen", np.random.default_rng(0)) is None


def test_random_children_grow_text_graphs(rng):
    ops = set()
    for name in TEXT_SEEDS * 4:
        for child in random_children(seed(name), rng, n=8, max_model_size=CAP):
            op = child.history[-1]
            ops.add(op["op"] if op["op"] != "deepen" else op["layer"])
    assert {"text_branch", "widen", "attention", "conv1d"} <= ops
    assert not ops & {"add_skip", "concat_skip", "conv2d", "conv_block"}
    assert "text_branch" in TEXT_OPERATIONS and "text_branch" not in OPERATIONS
    image_ops = {
        c.history[-1]["op"] for c in random_children(small_cnn((8, 8, 1), 3, width=4), rng, n=12)
    }
    assert "text_branch" not in image_ops


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(TEXT_SEEDS), steps=st.integers(1, 6), seed_value=st.integers(0, 2**31 - 1)
)
def test_random_text_morphisms_preserve_function(name, steps, seed_value):
    rng = np.random.default_rng(seed_value)
    parent = seed(name)
    child = parent
    for _ in range(steps):
        children = random_children(child, rng, n=4, max_model_size=CAP)
        if not children:
            break
        child = children[int(rng.integers(len(children)))]
    assert apply_ops(parent, child.history).key() == child.key()
    assert_function_preserved(parent, child, rng)


# ---------------------------------------------------------------------- cost and kernels
def test_cost_features_of_text_layers():
    from automl.search.cost import activations, cost_features, multiply_adds

    assert multiply_adds(seed("bag_linear")) == L + V * 3 + 3
    embed = seed("embed_pool")
    assert multiply_adds(embed) == L * 6 + 6 * 3 + 3
    conv = seed("conv_text")
    assert multiply_adds(conv) == L * 6 + L * (3 * 6 * 5 + 5) + 5 * 3 + 3
    attention = deepen(embed, 1, "attention")
    extra = 4 * L * 6 * 6 + 2 * L * L * 6
    assert multiply_adds(attention) == multiply_adds(embed) + extra
    assert activations(conv) == L + L * 6 + 2 * L * 5 + 5 + 5 + 3
    for name in TEXT_SEEDS:
        assert np.isfinite(cost_features(seed(name))).all()


def test_graph_kernels_read_text_graphs():
    from automl.kernels import EditDistanceKernel, WLKernel, as_labelled

    graphs = [seed(name) for name in TEXT_SEEDS]
    graphs += [deepen(graphs[3], 1, "attention"), text_branch(graphs[0])]
    labels = set(as_labelled(deepen(graphs[3], 1, "attention")).labels)
    assert {"embedding_l12", "conv1d_k3", "gmp1d", "attention_h2"} <= labels
    assert "bag_sublinear" in as_labelled(graphs[0]).labels
    for kernel in (WLKernel(), EditDistanceKernel()):
        gram = kernel(graphs)
        assert gram.shape == (6, 6) and np.isfinite(gram).all()
        np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-6)
