import json

import pytest

from automl.graph.architecture import ArchitectureGraph, Node
from automl.graph.seeds import mlp, resnet_cnn, small_cnn

SEED_GRAPHS = {
    "small_cnn": lambda: small_cnn((8, 8, 1), 10),
    "small_cnn_rgb": lambda: small_cnn((12, 10, 3), 4, blocks=3, convs_per_block=1),
    "resnet_cnn": lambda: resnet_cnn((8, 8, 1), 10, stages=3, blocks_per_stage=2),
    "mlp": lambda: mlp((13,), 3),
    "mlp_regression": lambda: mlp((5,), 1, "linear", width=16, layers=3, dropout=0.0),
}


@pytest.mark.parametrize("name", sorted(SEED_GRAPHS))
def test_json_round_trip_keeps_graph_and_key(name):
    graph = SEED_GRAPHS[name]()
    again = ArchitectureGraph.from_json(graph.to_json())
    assert again.to_dict() == graph.to_dict()
    assert again.key() == graph.key()
    assert json.loads(again.to_json()) == json.loads(graph.to_json())


def test_key_ignores_node_ids_but_not_structure():
    graph = small_cnn((8, 8, 1), 10)
    shift = 100
    renumbered = ArchitectureGraph(
        [
            Node(n.id + shift, n.type, dict(n.params), tuple(i + shift for i in n.inputs))
            for n in reversed(list(graph.nodes.values()))
        ]
    )
    assert renumbered.key() == graph.key()
    assert renumbered == graph
    assert small_cnn((8, 8, 1), 10, width=16).key() != graph.key()
    assert small_cnn((8, 8, 1), 9).key() != graph.key()


def test_shapes_and_parameter_count_by_hand():
    graph = ArchitectureGraph.chain(
        (8, 8, 1),
        [
            ("conv2d", {"filters": 4, "kernel_size": 3}),
            ("batchnorm", {}),
            ("maxpool", {}),
            ("gap", {}),
            ("output", {"units": 3}),
        ],
    )
    assert graph.shape(1) == (8, 8, 4)
    assert graph.shape(3) == (4, 4, 4)
    assert graph.shape(graph.output_id) == (3,)
    assert graph.count_params() == (9 * 4 + 4) + 16 + (4 * 3 + 3)


def test_bad_graphs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown layer type 'conv3d'"):
        ArchitectureGraph.chain((8, 8, 1), [("conv3d", {}), ("output", {"units": 2})])
    with pytest.raises(ValueError, match="needs a flat input"):
        ArchitectureGraph.chain((8, 8, 1), [("output", {"units": 2})])
    with pytest.raises(ValueError, match="exactly one 'input' and one 'output'"):
        ArchitectureGraph.chain((4,), [("dense", {"units": 2})])
    with pytest.raises(ValueError, match="add needs equal input shapes"):
        ArchitectureGraph(
            [
                Node(0, "input", {"shape": [4]}),
                Node(1, "dense", {"units": 3}, (0,)),
                Node(2, "add", {}, (0, 1)),
                Node(3, "output", {"units": 2}, (2,)),
            ]
        )
    with pytest.raises(ValueError, match="cycle"):
        ArchitectureGraph(
            [
                Node(0, "input", {"shape": [4]}),
                Node(1, "dense", {"units": 4}, (0, 2)),
                Node(2, "add", {}, (1,)),
                Node(3, "output", {"units": 2}, (2,)),
            ]
        )


def test_newer_format_version_is_refused():
    data = mlp((3,), 2).to_dict()
    data["format_version"] = 99
    with pytest.raises(ValueError, match="Upgrade automl"):
        ArchitectureGraph.from_dict(data)


def test_graph_modules_import_without_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, automl, automl.graph.architecture, automl.graph.seeds, automl.kernels;"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(SEED_GRAPHS))
def test_parameter_count_equals_keras(name):
    from automl.graph.builder import build_model

    graph = SEED_GRAPHS[name]()
    model = build_model(graph)
    assert model.count_params() == graph.count_params()
    assert tuple(model.output_shape[1:]) == graph.shape(graph.output_id)
