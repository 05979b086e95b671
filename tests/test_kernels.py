import subprocess
import sys

import numpy as np
import pytest
from automl.kernels.base import LabelledGraph, as_labelled
from automl.kernels.edit_distance import (
    EditDistanceKernel,
    distance_matrix,
    edit_distance,
    structure,
)
from automl.kernels.wl import WLKernel
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel

from automl.graph.architecture import ArchitectureGraph, Node
from automl.graph.seeds import mlp, resnet_cnn, small_cnn
from automl.nb201 import codec as nb201
from automl.nb201 import space as moves

KERNELS = {
    "wl_h1": lambda: WLKernel(h=1),
    "wl_h2": lambda: WLKernel(h=2),
    "edit_default": lambda: EditDistanceKernel(),
    "edit_alternative": lambda: EditDistanceKernel(
        embedding="bourgain" if EditDistanceKernel().embedding == "clip" else "clip"
    ),
}


def seed_graphs() -> list[ArchitectureGraph]:
    graphs = [small_cnn((8, 8, 1), 10, width=w) for w in (4, 8, 16, 32)]
    graphs += [small_cnn((8, 8, 1), 10, width=8, blocks=3, convs_per_block=1)]
    graphs += [resnet_cnn((8, 8, 1), 10, width=w) for w in (8, 16)]
    graphs += [resnet_cnn((8, 8, 1), 10, width=8, stages=3, blocks_per_stage=2)]
    graphs += [mlp((5,), 1, "linear", width=w, layers=d) for w, d in ((16, 1), (16, 2), (64, 2))]
    return graphs


def nb201_cells(n: int = 30) -> list[nb201.Cell]:
    rng = np.random.default_rng(0)
    cells = [moves.sample(rng) for _ in range(n - 2)]
    cells.append(nb201.Cell(("none",) * 6))  # constant-zero output
    cells.append(nb201.parse(str(cells[0])))  # a duplicate
    return cells


DATASETS = {"seeds": seed_graphs, "nb201": nb201_cells}


@pytest.fixture(params=sorted(KERNELS))
def kernel(request):
    return KERNELS[request.param]()


@pytest.mark.parametrize("data", sorted(DATASETS))
def test_gram_is_symmetric_psd_and_consistent(kernel, data):
    X = DATASETS[data]()
    K = kernel(X)
    assert K.shape == (len(X), len(X))
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    assert np.linalg.eigvalsh(K).min() >= -1e-8
    np.testing.assert_allclose(K, kernel(X, X), atol=1e-12)
    np.testing.assert_allclose(kernel.diag(X), np.diag(K), atol=1e-12)
    np.testing.assert_allclose(kernel(X[:3], X[2:]), K[:3, 2:], atol=1e-10)


def test_gram_on_graphs_outside_the_reference_is_psd(kernel):
    cells = nb201_cells(40)
    kernel(cells[:10])  # the edit-distance embeddings are fitted here
    K = kernel(cells)
    assert np.linalg.eigvalsh(K).min() >= -1e-8
    np.testing.assert_allclose(np.diag(K), 1.0)


def test_clone_gives_an_equal_kernel(kernel):
    twin = clone(kernel)
    assert twin.get_params() == kernel.get_params()
    assert twin == kernel
    X = nb201_cells(10)
    np.testing.assert_allclose(twin(X), kernel(X), atol=1e-12)
    theta_clone = kernel.clone_with_theta(kernel.theta)
    np.testing.assert_allclose(theta_clone(X), kernel(X), atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("data", sorted(DATASETS))
def test_gp_fits_and_predicts_on_graph_lists(kernel, data):
    X = DATASETS[data]()
    y = np.linspace(0.0, 1.0, len(X))
    gp = GaussianProcessRegressor(ConstantKernel() * kernel + WhiteKernel(), normalize_y=True)
    gp.fit(X, y)
    mean, std = gp.predict(X[:4], return_std=True)
    assert mean.shape == (4,) and std.shape == (4,)
    assert np.all(np.isfinite(mean)) and np.all(std >= 0)


def test_gradient_matches_finite_differences(kernel):
    X = nb201_cells(12)
    K, gradient = kernel(X, eval_gradient=True)
    assert gradient.shape == (len(X), len(X), len(kernel.theta))
    for i in range(len(kernel.theta)):
        step = np.zeros_like(kernel.theta)
        step[i] = 1e-5
        upper = kernel.clone_with_theta(kernel.theta + step)
        lower = kernel.clone_with_theta(kernel.theta - step)
        upper.set_reference(X)
        lower.set_reference(X)
        numeric = (upper(X) - lower(X)) / 2e-5
        np.testing.assert_allclose(gradient[:, :, i], numeric, atol=1e-4)


def test_hyperparameters():
    assert len(WLKernel(h=3).theta) == 0
    assert WLKernel(h=3).hyperparameter_h.fixed
    assert [h.name for h in EditDistanceKernel().hyperparameters if not h.fixed] == ["length_scale"]
    assert len(EditDistanceKernel(length_scale_bounds="fixed").theta) == 0


def test_kernels_take_arch_strings_and_renumbered_graphs():
    cells = nb201_cells(5)
    np.testing.assert_allclose(WLKernel()([str(c) for c in cells]), WLKernel()(cells))
    graph = resnet_cnn((8, 8, 1), 10)
    renumbered = ArchitectureGraph(
        [
            Node(n.id + 7, n.type, dict(n.params), tuple(i + 7 for i in n.inputs))
            for n in graph.nodes.values()
        ]
    )
    other = small_cnn((8, 8, 1), 10)
    for kernel in (WLKernel(), EditDistanceKernel()):
        np.testing.assert_allclose(kernel([graph, other]), kernel([renumbered, other]))
    with pytest.raises(TypeError, match="Received: an object of type int"):
        WLKernel()([1, 2])


def test_labelled_form_of_an_architecture():
    graph = as_labelled(resnet_cnn((8, 8, 1), 10, width=16))
    assert isinstance(graph, LabelledGraph)
    assert graph.labels[0] == "input" and graph.labels[-1] == "output"
    assert "conv2d_k3" in graph.labels and "add" in graph.labels
    assert max(w or 0 for w in graph.widths) == 32
    chain, _, skips = structure(graph)
    assert len(skips) == 2  # one identity shortcut per stage
    assert np.all(skips[:, 1] == 6)  # conv-BN-ReLU-conv-BN-add


def test_edit_distance_by_hand():
    a = small_cnn((8, 8, 1), 10, width=8)
    b = small_cnn((8, 8, 1), 10, width=16)
    assert edit_distance(a, a) == 0.0
    # 4 convs: 8 vs 16 twice, 16 vs 32 twice, each |w_a - w_b| / max = 0.5
    assert edit_distance(a, b) == pytest.approx(2.0)
    deeper = mlp((5,), 1, width=16, layers=3)
    assert edit_distance(mlp((5,), 1, width=16, layers=2), deeper) == pytest.approx(3.0)
    # one skip in each stage of a resnet, none in the same chain without them: 2 unmatched
    # skips, each costing 1, and no layer edit
    resnet = as_labelled(resnet_cnn((8, 8, 1), 10))
    chain = LabelledGraph(
        "resnet-without-skips",
        resnet.labels,
        tuple(ins[-1:] for ins in resnet.inputs),
        resnet.widths,
    )
    assert resnet.labels.count("add") == 2 and len(structure(chain)[2]) == 0
    assert edit_distance(resnet, chain) == pytest.approx(2.0)
    assert edit_distance(chain, resnet, skip_weight=0.5) == pytest.approx(1.0)
    assert edit_distance(resnet, chain, skip_weight=0.0) == 0.0
    D = distance_matrix(seed_graphs())
    np.testing.assert_allclose(D, D.T)
    assert np.all(np.diag(D) == 0) and np.all(D[~np.eye(len(D), dtype=bool)] > 0)


def test_skip_matching_cost():
    # skips into node 3 from inputs 0 and 1 (conv branches), vs the same with one moved
    first = nb201.parse(
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    )
    second = nb201.parse(
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    s1, s2 = structure(as_labelled(first))[2], structure(as_labelled(second))[2]
    assert len(s1) == len(s2) == 1
    (u1, d1, k1), (u2, d2, k2) = s1[0], s2[0]
    assert k1 == k2 and (u1, u2) == (0, 2)
    expected = (abs(u1 - u2) + abs(d1 - d2)) / (max(u1, u2) + max(d1, d2))
    assert edit_distance(first, second) == pytest.approx(expected)
    assert edit_distance(first, second, skip_weight=2.0) == pytest.approx(2 * expected)


def test_composes_with_sklearn_kernels():
    cells = nb201_cells(8)
    composed = ConstantKernel(2.0) * WLKernel() + WhiteKernel(0.5)
    K = composed(cells)
    np.testing.assert_allclose(K, 2.0 * WLKernel()(cells) + 0.5 * np.eye(len(cells)))
    np.testing.assert_allclose(composed.diag(cells), np.diag(K))


def test_kernel_modules_import_without_tensorflow():
    code = (
        "import sys, automl.kernels, automl.kernels.wl, automl.kernels.edit_distance, "
        "automl.nb201.codec;"
        "automl.kernels.base.from_nb201(automl.nb201.codec.all_cells()[7]);"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
