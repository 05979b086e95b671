"""Image augmentation as a layer type, a morphism, and something an exported model leaves out."""

from __future__ import annotations

import numpy as np
import pytest
from test_morphism import assert_function_preserved

from automl.graph import layers
from automl.graph.architecture import ArchitectureGraph
from automl.graph.seeds import SEEDS, mlp, resnet_cnn, small_cnn
from automl.morphism.augment import MIN_SIZE, augment
from automl.morphism.operators import (
    IMAGE_AUGMENT_OPERATIONS,
    OPERATIONS,
    TEXT_OPERATIONS,
    apply_ops,
    deepen,
    operations,
    random_children,
    random_op,
)


def images(rng, n: int = 4, size: int = 16, channels: int = 1) -> np.ndarray:
    return rng.normal(size=(n, size, size, channels)).astype("float32")


def augmented(size: int = 16, **kwargs) -> ArchitectureGraph:
    return augment(small_cnn((size, size, 1), 3, width=4, blocks=1), **kwargs)


# ---------------------------------------------------------------------- the Keras layer
def test_layer_changes_images_in_training_only(rng):
    from automl.graph.augment_keras import ImageAugment

    x = images(rng, n=8)
    layer = ImageAugment(seed=1)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    moved = np.asarray(layer(x, training=True))
    assert moved.shape == x.shape and moved.dtype == x.dtype
    assert np.abs(moved - x).mean() > 0.05
    assert not np.allclose(moved, np.asarray(layer(x, training=True)))  # new draws each call
    for part in ({"translate": 0.2}, {"rotate": 0.1}, {"zoom": 0.2}, {"contrast": 0.5}):
        alone = {"translate": 0.0, "rotate": 0.0, "zoom": 0.0, "contrast": 0.0, **part}
        assert np.abs(np.asarray(ImageAugment(**alone)(x, training=True)) - x).max() > 1e-3
    nothing = ImageAugment(translate=0, rotate=0, zoom=0, contrast=0)
    np.testing.assert_array_equal(np.asarray(nothing(x, training=True)), x)


def test_flip_mirrors_left_to_right(rng):
    from automl.graph.augment_keras import ImageAugment

    x = images(rng, n=32, size=5)
    layer = ImageAugment(translate=0, rotate=0, zoom=0, contrast=0, flip=True, seed=3)
    out = np.asarray(layer(x, training=True))
    kept = np.isclose(out, x, atol=1e-5).all(axis=(1, 2, 3))
    mirrored = np.isclose(out, x[:, :, ::-1], atol=1e-5).all(axis=(1, 2, 3))
    assert (kept | mirrored).all() and kept.any() and mirrored.any()


def test_layer_config_and_serialization_round_trip():
    import keras

    from automl.graph.augment_keras import ImageAugment

    layer = ImageAugment(translate=0.2, rotate=0.0, zoom=0.15, contrast=0.3, flip=True, seed=5)
    config = layer.get_config()
    assert ImageAugment.from_config(config).get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is ImageAugment and again.get_config() == config
    layer.build((None, 8, 8, 3))
    assert layer.weights == [] and layer.count_params() == 0


# ---------------------------------------------------------------------- the layer type
def test_layer_type_has_no_weights_and_checks_its_parameters():
    spec = layers.get("augment")
    params = spec.defaults
    assert params == {"translate": 0.1, "rotate": 0.05, "zoom": 0.1, "contrast": 0.1, "flip": False}
    assert spec.output_shape(params, [(16, 16, 3)]) == (16, 16, 3)
    assert spec.count_params(params, [(16, 16, 3)]) == 0
    assert spec.initial_weights(params, 3, identity=True) == []
    assert spec.label(params) == "augment"
    with pytest.raises(ValueError, match="image"):
        spec.output_shape(params, [(16,)])
    with pytest.raises(ValueError, match=r"zoom must be in \[0, 1\)"):
        spec.output_shape({**params, "zoom": 1.5}, [(16, 16, 3)])
    with pytest.raises(ValueError, match="flip must be True or False"):
        spec.output_shape({**params, "flip": "yes"}, [(16, 16, 3)])


def test_graph_json_round_trip_and_replay_keep_the_augment_node():
    graph = augmented(28, flip=True, rotate=0.0)
    again = ArchitectureGraph.from_json(graph.to_json())
    assert again.key() == graph.key() and again.to_dict() == graph.to_dict()
    assert graph.history[-1] == {
        "op": "augment",
        "translate": 0.1,
        "rotate": 0.0,
        "zoom": 0.1,
        "contrast": 0.1,
        "flip": True,
    }
    replayed = apply_ops(small_cnn((28, 28, 1), 3, width=4, blocks=1), graph.history)
    assert replayed.key() == graph.key()
    assert graph.count_params() == small_cnn((28, 28, 1), 3, width=4, blocks=1).count_params()


def test_kernels_and_cost_model_take_augment_nodes():
    from automl.kernels import EditDistanceKernel, WLKernel

    from automl.search.cost import cost_features, multiply_adds

    plain = small_cnn((16, 16, 1), 3, width=4, blocks=1)
    graphs = [plain, augment(plain), augment(resnet_cnn((16, 16, 1), 3, width=4, stages=1))]
    for kernel in (WLKernel(), EditDistanceKernel()):
        gram = kernel(graphs)
        assert np.isfinite(gram).all() and np.allclose(gram, gram.T)
        assert gram[0, 1] < max(gram[0, 0], gram[1, 1])  # augmentation is seen
    extra = multiply_adds(graphs[1]) - multiply_adds(plain)
    assert 0 < extra < 0.1 * multiply_adds(plain)  # little beside the convolutions
    assert np.isfinite(cost_features(graphs[1])).all()


# ---------------------------------------------------------------------- the morphism
def test_morphism_preserves_the_function_and_later_morphisms_too(rng):
    parent = resnet_cnn((16, 16, 2), 3, "linear", width=4, stages=1)
    child = augment(parent)
    (node,) = [n for n in child.nodes.values() if n.type == "augment"]
    assert node.inputs == (child.input_id,) and child.consumers(child.input_id) == [node.id]
    assert_function_preserved(parent, child, rng)
    grandchild = child
    for _ in range(4):  # morphisms of an augmented graph
        grandchild = random_children(grandchild, rng, n=1, max_model_size=40_000)[0]
    assert_function_preserved(parent, grandchild, rng)
    assert_function_preserved(child, grandchild, rng)


def test_morphism_is_offered_only_for_images_of_16_pixels_or_more(rng):
    big = small_cnn((MIN_SIZE, MIN_SIZE, 3), 3, width=4)
    assert operations(big) == IMAGE_AUGMENT_OPERATIONS == OPERATIONS + ("augment",)
    assert random_op(big, "augment", rng)["op"] == "augment"
    ops = {c.history[-1]["op"] for seed in range(6) for c in random_children(big, _rng(seed))}
    assert "augment" in ops
    refused = {
        "8x8 digits": small_cnn((8, 8, 1), 3, width=4),
        "16x8 strips": small_cnn((16, 8, 1), 3, width=4),
        "a table": mlp((20,), 3, width=8),
        "text": SEEDS["bag_mlp"]((32,), 3, tokens=50, width=8),
        "augmented already": augment(big),
    }
    for what, graph in refused.items():
        assert random_op(graph, "augment", rng) is None, what
        with pytest.raises(ValueError):
            augment(graph)
        for seed in range(4):
            kinds = {c.history[-1]["op"] for c in random_children(graph, _rng(seed), n=8)}
            assert "augment" not in kinds, what
    assert operations(refused["8x8 digits"]) == OPERATIONS
    assert operations(refused["a table"]) == OPERATIONS
    assert operations(refused["text"]) == TEXT_OPERATIONS


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_nothing_is_inserted_between_the_input_and_the_augment_node():
    graph = augmented(16)
    source = graph.input_id
    with pytest.raises(ValueError, match="after the augment node"):
        deepen(graph, source, "conv2d")
    for seed in range(10):
        for child in random_children(graph, _rng(seed), n=8):
            op = child.history[-1]
            assert op.get("after") != source and op.get("start") != source, op
            (first,) = child.consumers(child.input_id)
            assert child.node(first).type == "augment"


# ---------------------------------------------------------------------- inference and export
def test_inference_graph_drops_augment_nodes_and_keeps_the_rest():
    plain = resnet_cnn((16, 16, 1), 3, width=4, stages=1)
    graph = augment(plain)
    inference = graph.inference_graph()
    assert all(n.type != "augment" for n in inference.nodes.values())
    assert inference.key() == plain.key() and set(inference.nodes) == set(plain.nodes)
    assert plain.inference_graph() is plain


def test_inference_model_predicts_what_the_trained_model_predicts(rng):
    import keras

    from automl.engine.final import copy_weights
    from automl.graph.augment_keras import ImageAugment
    from automl.graph.builder import build_model, inference_model

    graph = augmented(16)
    model = build_model(graph)
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=True)
    if keras.backend.backend() == "jax":
        assert model.jit_compile  # the augment layer keeps the train step compiled
    x, y = images(rng, n=16), rng.integers(0, 3, 16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    expected = np.asarray(model(x, training=False))
    for exported in (inference_model(model), build_model(graph, inference=True)):
        if exported is not model:
            copy_weights(model, exported, "")
        assert not any(isinstance(layer, ImageAugment) for layer in exported.layers)
        assert not any("augment" in layer.name for layer in exported.layers)
        np.testing.assert_allclose(np.asarray(exported(x, training=False)), expected, atol=1e-6)
        np.testing.assert_allclose(exported.predict(x, verbose=0), expected, atol=1e-5)
    plain = build_model(small_cnn((16, 16, 1), 3, width=4, blocks=1))
    assert inference_model(plain) is plain


def test_the_final_model_leaves_augmentation_out_and_is_compiled(rng):
    from types import SimpleNamespace

    from automl.data.heads import ClassificationHead
    from automl.engine.final import for_export
    from automl.graph.augment_keras import ImageAugment
    from automl.graph.builder import build_model

    model = build_model(augmented(16))
    context = SimpleNamespace(head=ClassificationHead.fit(np.arange(3)))
    exported = for_export(context, model)
    assert any(isinstance(layer, ImageAugment) for layer in model.layers)
    assert not any(isinstance(layer, ImageAugment) for layer in exported.layers)
    assert exported.optimizer.built and exported.loss == "sparse_categorical_crossentropy"
    x = images(rng)
    np.testing.assert_allclose(exported.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_search_space_can_start_with_augmentation():
    from automl.search.spaces import MorphismSpace

    def first(space):
        return [space.initial()[0], space.sample(_rng(0))]

    for graph in first(MorphismSpace((28, 28, 1), 10, augment=True)):
        assert [n.type for n in graph.nodes.values()].count("augment") == 1
        assert graph.history == []
    for space in (MorphismSpace((28, 28, 1), 10), MorphismSpace((16, 16, 1), 10, augment=True)):
        assert all(n.type != "augment" for g in first(space) for n in g.nodes.values())
