import numpy as np
import pytest

from automl.graph import layers
from automl.graph.layers import LayerType, WeightLayout

# type -> (params, input shapes): one example per registered layer type
EXAMPLES = {
    "input": ({"shape": [5, 6, 2]}, []),
    "conv2d": ({"filters": 4, "strides": 2, "use_bias": False}, [(7, 5, 3)]),
    "sep_conv2d": ({"filters": 5, "kernel_size": 5}, [(6, 6, 3)]),
    "dense": ({"units": 7}, [(9,)]),
    "output": ({"units": 3}, [(9,)]),
    "batchnorm": ({}, [(5, 5, 3)]),
    "relu": ({}, [(4,)]),
    "maxpool": ({"pool_size": 3, "strides": 2}, [(7, 7, 2)]),
    "avgpool": ({}, [(5, 6, 2)]),
    "gap": ({}, [(5, 5, 3)]),
    "flatten": ({}, [(3, 4, 2)]),
    "dropout": ({"rate": 0.5}, [(5,)]),
    "add": ({}, [(4, 4, 3), (4, 4, 3)]),
    "concat": ({}, [(4, 4, 3), (4, 4, 2)]),
    "bag": ({"tokens": 20, "mode": "sublinear"}, [(12,)]),
    "embedding": ({"tokens": 20, "units": 6, "length": 8}, [(12,)]),
    "conv1d": ({"filters": 5, "kernel_size": 5}, [(10, 4)]),
    "gap1d": ({}, [(10, 4)]),
    "gmp1d": ({}, [(10, 4)]),
    "attention": ({"heads": 3}, [(10, 4)]),
    "augment": ({"rotate": 0.1, "flip": True}, [(6, 6, 3)]),
}


def example(name: str) -> tuple[LayerType, dict, list[tuple[int, ...]]]:
    spec = layers.get(name)
    params, ins = EXAMPLES[name]
    return spec, {**spec.defaults, **params}, ins


def build(spec: LayerType, params: dict, ins: list[tuple[int, ...]]):
    """The Keras layer of `spec`, called on symbolic inputs; returns (layer, output)."""
    import keras

    layer = spec.keras_layer(params, f"n1_{spec.name}")
    tensors = [keras.Input(shape) for shape in ins]
    return layer, layer(tensors if spec.arity == "many" else tensors[0])


def test_every_type_has_an_example():
    assert sorted(EXAMPLES) == layers.names()


@pytest.mark.parametrize("name", layers.names())
def test_every_type_has_every_facet(name):
    spec, params, ins = example(name)
    assert spec.name == name
    assert isinstance(spec.defaults, dict)
    assert spec.arity in ("none", "one", "many")
    assert spec.channels in (layers.PASS, layers.CONCAT, layers.PRODUCE, layers.FIXED)
    assert isinstance(spec.consumes, bool)
    assert spec.sign in (layers.NON_NEGATIVE, layers.KEPT, layers.ANY)
    assert spec.width_param is None or spec.width_param in spec.defaults
    assert isinstance(spec.weights, WeightLayout)
    assert spec.keras_class is None or isinstance(spec.keras_class, str)
    assert spec.label(params).startswith(name)
    assert all(isinstance(n, int) for n in spec.output_shape(params, ins))
    assert spec.count_params(params, ins) >= 0
    pool = spec.skip_pool(params)
    assert pool is None or pool[0] in layers.LAYERS
    channels = ins[0][-1] if ins else 1
    if name == "output":
        with pytest.raises(ValueError, match="cannot insert"):
            spec.initial_weights(params, channels, identity=True)
    else:
        assert isinstance(spec.initial_weights(params, channels, identity=True), list)


@pytest.mark.parametrize("name", layers.names())
def test_shape_and_parameter_count_equal_keras(name):
    spec, params, ins = example(name)
    if spec.keras_class is None:
        assert spec.keras_layer(params, "n0_input") is None
        assert spec.output_shape(params, ins) == (5, 6, 2)
        return
    layer, out = build(spec, params, ins)
    assert layer.name == f"n1_{name}"
    assert tuple(out.shape[1:]) == spec.output_shape(params, ins)
    assert layer.count_params() == spec.count_params(params, ins)


@pytest.mark.parametrize("name", layers.names())
def test_weight_layout_matches_keras(name):
    spec, params, ins = example(name)
    if spec.keras_class is None:
        return
    layer, _ = build(spec, params, ins)
    arrays = layer.get_weights()
    layout = spec.weights
    assert bool(arrays) == (layout != WeightLayout())
    width = params.get(spec.width_param) if spec.width_param else None
    if layout.units_from is not None:
        assert all(a.shape[-1] == width for a in arrays[layout.units_from :])
    for index, axis, _ in layout.input_axes:
        assert arrays[index].shape[axis] == ins[0][-1]
    if layout.channelwise:
        assert all(a.shape == (ins[0][-1],) for a in arrays)


@pytest.mark.parametrize("name", ["conv2d", "sep_conv2d", "dense", "batchnorm", "relu"])
def test_initial_weights_give_the_identity(name):
    spec = layers.get(name)
    shape = (5, 5, 4) if name != "dense" else (4,)
    params = {**spec.defaults, **({spec.width_param: 4} if spec.width_param else {})}
    layer, _ = build(spec, params, [shape])
    weights = spec.initial_weights(params, 4, identity=True)
    assert [w.shape for w in weights] == [w.shape for w in layer.get_weights()]
    if weights:
        layer.set_weights(weights)
    x = np.random.default_rng(0).uniform(0.1, 1.0, size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), x, atol=1e-5)
    if name not in ("batchnorm", "relu"):  # a zero branch
        layer.set_weights(spec.initial_weights(params, 4, identity=False))
        assert not np.asarray(layer(x)).any()


def test_unknown_type_names_it_and_the_known_ones():
    with pytest.raises(ValueError, match="Unknown layer type 'conv3d'") as info:
        layers.get("conv3d")
    assert all(repr(name) in str(info.value) for name in layers.names())


def test_registry_imports_without_keras():
    import subprocess
    import sys

    code = (
        "import sys, automl.graph.layers;"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kernel_labels_show_structure_not_width():
    conv = layers.get("conv2d")
    assert conv.label({**conv.defaults, "filters": 8}) == "conv2d_k3"
    assert conv.label({**conv.defaults, "filters": 8, "kernel_size": 1, "strides": 2}) == (
        "conv2d_k1_s2"
    )
    assert layers.get("maxpool").label(layers.get("maxpool").defaults) == "maxpool_p2_s2"
    assert layers.get("dense").label({"units": 4, "use_bias": True}) == "dense"
