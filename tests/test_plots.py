import matplotlib

matplotlib.use("Agg")

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from automl.errors import InputError  # noqa: E402
from automl.graph import seeds  # noqa: E402
from automl.reporting.plots import layered_layout, plot_architecture, plot_search  # noqa: E402

DARTS = (
    "normal=|sep_conv_3x3~0|sep_conv_3x3~1|+|skip_connect~0|sep_conv_3x3~1|"
    "+|skip_connect~0|dil_conv_3x3~2|+|skip_connect~0|sep_conv_3x3~3|"
    ";reduction=|max_pool_3x3~0|max_pool_3x3~1|+|max_pool_3x3~0|skip_connect~2|"
    "+|skip_connect~2|max_pool_3x3~3|+|avg_pool_3x3~0|skip_connect~2|"
)
NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def summary():
    """Trials out of elapsed order, one unfinished (no score), one without elapsed time."""
    return pd.DataFrame(
        {
            "trial_id": ["t0", "t1", "t2", "t3", "t4", "t5", "t6"],
            "score": [0.60, 0.50, np.nan, 0.70, 0.65, None, 0.90],
            "elapsed": [30.0, 10.0, 35.0, 50.0, 20.0, 60.0, np.nan],
            "params": [2e4, 1e3, np.nan, 5e4, np.nan, 1e5, 3e3],
            "ensemble": [True, False, False, True, False, True, False],
            "status": ["completed"] * 2 + ["failed"] + ["completed"] * 2 + ["running"] * 2,
        }
    )


def _collection(ax, label):
    found = [c for c in ax.collections if c.get_label() == label]
    return found[0].get_offsets() if found else np.empty((0, 2))


def _best_line(ax):
    (line,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def test_search_figure_has_two_labelled_axes(summary):
    fig = plot_search(summary, objective="val_accuracy")
    left, right = fig.axes
    assert len(fig.axes) == 2
    assert left.get_xlabel() == "seconds since the search started"
    assert left.get_ylabel() == right.get_ylabel() == "val_accuracy"
    assert right.get_xscale() == "log" and right.get_xlabel() == "parameters"
    assert fig.get_suptitle() == "4 finished trials, best val_accuracy 0.7"
    assert plot_search(summary, title="run 1").get_suptitle() == "run 1"


@pytest.mark.parametrize(
    "direction, expected", [("max", [0.5, 0.65, 0.65, 0.7]), ("min", [0.5, 0.5, 0.5, 0.5])]
)
def test_best_so_far_is_running_extreme_by_elapsed(summary, direction, expected):
    x, y = _best_line(plot_search(summary, direction=direction).axes[0])
    finished = summary.dropna(subset=["score", "elapsed"]).sort_values("elapsed")
    running = np.maximum if direction == "max" else np.minimum
    np.testing.assert_allclose(x, [10, 20, 30, 50])
    np.testing.assert_allclose(y, running.accumulate(finished["score"].to_numpy()))
    np.testing.assert_allclose(y, expected)


def test_best_so_far_min_decreases():
    frame = pd.DataFrame({"score": [3.0, 1.0, 2.0, 0.5], "elapsed": [1.0, 2.0, 3.0, 4.0]})
    _, y = _best_line(plot_search(frame, direction="min", objective="loss").axes[0])
    np.testing.assert_allclose(y, [3.0, 1.0, 1.0, 0.5])


def test_ensemble_members_are_highlighted_and_unfinished_rows_skipped(summary):
    left, right = plot_search(summary).axes
    members, trials = _collection(left, "ensemble member"), _collection(left, "trial")
    # t0 and t3 are finished members; t5 is a member without a score.
    assert sorted(map(tuple, members)) == [(30.0, 0.6), (50.0, 0.7)]
    assert sorted(map(tuple, trials)) == [(10.0, 0.5), (20.0, 0.65)]
    assert 35.0 not in np.concatenate([members[:, 0], trials[:, 0]])  # NaN score skipped
    assert "ensemble member" in [t.get_text() for t in left.get_legend().get_texts()]
    # Right: only rows with a parameter count (t4 has none).
    assert sorted(map(tuple, _collection(right, "ensemble member"))) == [(2e4, 0.6), (5e4, 0.7)]
    assert sorted(map(tuple, _collection(right, "trial"))) == [(1e3, 0.5)]


def test_search_without_ensemble_or_params_columns():
    frame = pd.DataFrame({"score": [0.1, 0.2], "elapsed": [1.0, 2.0]})
    left, right = plot_search(frame).axes
    assert len(_collection(left, "trial")) == 2
    assert len(_collection(left, "ensemble member")) == 0
    assert "no parameter counts" in [t.get_text() for t in right.texts]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(columns=["trial_id", "score", "elapsed", "params", "ensemble", "status"]),
        pd.DataFrame({"score": [np.nan, 0.5, None], "elapsed": [1.0, np.nan, 3.0]}),
    ],
)
def test_search_without_finished_trials_raises(frame):
    with pytest.raises(InputError, match="no finished trial to plot"):
        plot_search(frame)


def test_search_rejects_bad_arguments(summary):
    with pytest.raises(InputError, match="'max' or 'min'"):
        plot_search(summary, direction="up")
    with pytest.raises(InputError, match="'score' and 'elapsed'"):
        plot_search(summary.drop(columns="elapsed"))
    with pytest.raises(InputError, match="Received: list"):
        plot_search([{"score": 1.0, "elapsed": 1.0}])


@pytest.mark.parametrize(
    "graph",
    [
        seeds.mlp((10,), 3),
        seeds.small_cnn((16, 16, 3), 10),
        seeds.resnet_cnn((16, 16, 3), 10),
    ],
    ids=["mlp", "small_cnn", "resnet_cnn"],
)
def test_architecture_graph_draws_each_layer_and_edge(graph):
    fig = plot_architecture(graph)
    (ax,) = fig.axes
    labels = [t for t in ax.texts if t.get_gid() == "node-label"]
    assert len(labels) == len(graph)
    by_type = sorted(t.get_text().split()[0] for t in labels)
    assert by_type == sorted(graph.node(i).type for i in graph.order)
    for i, text in zip(graph.order, labels):
        node = graph.node(i)
        assert node.type in text.get_text()
        if node.width is not None:
            assert text.get_text().startswith(f"{node.type} {node.width}")
    assert len(ax.patches) == graph.digraph.number_of_edges()  # one arrow per edge
    assert ax.get_title() == f"{len(graph)} layers, {graph.count_params():,} parameters"


def test_layered_layout_puts_inputs_above_and_spreads_layers():
    graph = seeds.resnet_cnn((16, 16, 3), 10)
    pos = layered_layout(graph.digraph, graph.order)
    assert pos[graph.input_id] == (0.0, 0.0)
    for u, v in graph.digraph.edges:
        assert pos[u][1] > pos[v][1]
    # The residual `add` sits below the longest branch, not right below the shortcut.
    add = next(i for i in graph.order if graph.node(i).type == "add")
    assert pos[add][1] == -1 - max(-pos[s][1] for s in graph.node(add).inputs)
    diamond = {"a": ["b", "c"], "b": ["d"], "c": ["d"]}
    layout = layered_layout(nx.DiGraph(diamond))
    assert layout == {"a": (0.0, 0.0), "b": (-0.5, -1.0), "c": (0.5, -1.0), "d": (0.0, -2.0)}


def _ops(cell):
    return sorted(op for node in cell for op, _ in node if op != "none")


def test_darts_genotype_draws_normal_and_reduction_cells():
    from automl.cells.genotype import Genotype

    genotype = Genotype.from_string(DARTS)
    fig = plot_architecture(genotype)
    assert [ax.get_title() for ax in fig.axes] == ["normal cell", "reduction cell"]
    for ax, cell in zip(fig.axes, (genotype.normal, genotype.reduction)):
        assert sorted(_texts(ax, "edge-label")) == _ops(cell)
        # c_{k-2}, c_{k-1}, four intermediate nodes and the output.
        assert sorted(_texts(ax, "node-label")) == sorted(
            ["$c_{k-2}$", "$c_{k-1}$", "2", "3", "4", "5", "$c_{k}$"]
        )


def test_nb201_genotype_draws_one_cell_without_none_edges():
    from automl.cells.genotype import Genotype

    genotype = Genotype.from_string(NB201)
    fig = plot_architecture(genotype, title="best cell")
    (ax,) = fig.axes
    assert ax.get_title() == "NAS-Bench-201 cell" and fig.get_suptitle() == "best cell"
    assert sorted(_texts(ax, "edge-label")) == _ops(genotype.normal)
    assert sorted(_texts(ax, "edge-label")) == [
        "avg_pool_3x3",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "skip_connect",
    ]
    assert sorted(_texts(ax, "node-label")) == ["0 in", "1", "2", "3 out"]


@pytest.mark.parametrize("bad", [None, "|nor_conv_3x3~0|", {"nodes": []}])
def test_architecture_rejects_other_inputs(bad):
    with pytest.raises(InputError, match=f"ArchitectureGraph.*Received: {type(bad).__name__}"):
        plot_architecture(bad)


def test_plots_do_not_import_tensorflow():
    code = (
        "import sys; import automl.reporting.plots as p\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "import pandas as pd; from automl.graph import seeds\n"
        "p.plot_architecture(seeds.resnet_cnn((8, 8, 1), 2)).savefig('/dev/null', format='png')\n"
        "p.plot_search(pd.DataFrame({'score': [1.0], 'elapsed': [2.0]}))\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
