"""The NAS-Bench-201 codec (`automl.nb201.codec`) and the search moves (`automl.nb201.space`)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from automl.kernels.base import from_nb201

from automl.errors import InputError
from automl.nb201 import codec as nb201
from automl.nb201 import space as moves

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_ops_and_edges_have_one_fixed_order():
    assert nb201.OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert nb201.EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert nb201.NUM_NODES == 4 and nb201.NUM_CELLS == 15625


def test_example_string_parses_in_edge_order():
    cell = nb201.parse(EXAMPLE)
    assert cell.ops == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "skip_connect",
    )
    assert str(cell) == EXAMPLE == cell.to_string() == cell.key() == nb201.format_cell(cell)
    assert nb201.Cell.from_string(EXAMPLE) == cell
    assert nb201.parse(f"  {EXAMPLE}\n") == cell
    # position k of the ops is edge k: the op of edge (source, target) is in node `target`
    for (source, target), op in zip(nb201.EDGES, cell.ops):
        assert (op, source) in nb201.to_nodes(cell)[target - 1]


def test_all_cells_are_unique_and_round_trip():
    cells = nb201.all_cells()
    strings = [nb201.format_cell(c) for c in cells]
    assert len(cells) == nb201.NUM_CELLS == 15625
    assert len(set(strings)) == 15625
    assert all(nb201.parse(s) == c for s, c in zip(strings, cells))
    assert all(nb201.from_nodes(nb201.to_nodes(c)) == c for c in cells)
    assert cells[0].ops == ("none",) * 6 and cells[1].ops[-1] == "skip_connect"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|",
        "|nor_conv_3x3~0|+|none~0|none~1|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~3|",
        "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~1|none~0|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|none~2|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3-0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~x|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "nor_conv_3x3~0+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0||+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~²|+|none~0|none~1|+|none~0|none~1|none~2|",
    ],
)
def test_malformed_strings_raise_input_errors_naming_the_string(bad):
    with pytest.raises(InputError) as info:
        nb201.parse(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_ops_and_types_raise():
    with pytest.raises(InputError, match="3 nodes separated"):
        nb201.parse("|nor_conv_3x3~0|")
    with pytest.raises(InputError, match="takes inputs"):
        nb201.parse("|nor_conv_3x3~0|+|none~1|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(InputError, match="Unknown NAS-Bench-201 ops"):
        nb201.Cell(("conv",) * 6)
    with pytest.raises(InputError, match="6 edge ops"):
        nb201.Cell(("none",) * 5)
    with pytest.raises(InputError, match="must be a str"):
        nb201.parse(None)


def test_live_edges():
    # node 1 has no live input, so the edges out of it are dead too.
    cell = nb201.parse(
        "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    )
    assert nb201.live_edges(cell) == [1, 3, 5]
    # node 2 cannot reach the output, so the edges into it are dead.
    cell = nb201.parse("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert nb201.live_edges(cell) == [3]
    assert nb201.live_edges(nb201.Cell(("nor_conv_3x3",) + ("none",) * 5)) == []
    assert nb201.live_edges(nb201.parse(EXAMPLE)) == list(range(6))


def test_to_graph_drops_none_and_dead_edges():
    cell = nb201.parse(
        "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    )
    graph = from_nb201(cell)
    assert graph.labels == (
        "input",
        "skip_connect",
        "add",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "output",
    )
    assert graph.inputs == ((), (0,), (1,), (0,), (2,), (3, 4))
    assert graph.key == nb201.format_cell(cell)
    dead = from_nb201(nb201.Cell(("nor_conv_3x3", "none", "none", "none", "none", "none")))
    assert dead.labels == ("input", "output") and dead.inputs == ((), ())


def test_packaged_table_and_one_hot():
    table = nb201.load_table()
    assert len(table) == 15625
    assert set(table) == {nb201.format_cell(c) for c in nb201.all_cells()}
    assert max(table.values()) == pytest.approx(73.51, abs=0.01)
    assert nb201.load_table(nb201.TABLE_PATH) == table
    vector = nb201.one_hot(nb201.parse(EXAMPLE))
    assert len(vector) == 30 and sum(vector) == 6
    assert vector[: len(nb201.OPS)] == [0.0, 0.0, 0.0, 1.0, 0.0]


def test_table_errors(tmp_path):
    with pytest.raises(InputError, match="No NAS-Bench-201 table"):
        nb201.load_table(tmp_path / "missing.csv")
    path = tmp_path / "table.csv"
    path.write_text("arch,score\n")
    with pytest.raises(InputError, match="needs columns 'arch' and 'test_accuracy'"):
        nb201.load_table(path)
    path.write_text(f"arch,score\n{EXAMPLE},1.5\n|none~0|+|none~0|,2\n")
    with pytest.raises(InputError, match="Line 3 .*'\\|none~0\\|\\+\\|none~0\\|'"):
        nb201.load_table(path, column="score")
    path.write_text(f"arch,score\n{EXAMPLE},1.5\n")
    assert nb201.load_table(path, column="score") == {EXAMPLE: 1.5}


def test_mutation_changes_exactly_one_edge():
    rng = random.Random(0)
    for _ in range(200):
        cell = moves.sample(rng)
        child = moves.mutate(cell, rng)
        assert sum(a != b for a, b in zip(cell.ops, child.ops)) == 1
    neighbours = moves.neighbours(nb201.parse(EXAMPLE))
    assert len(set(neighbours)) == 24
    assert all(sum(a != b for a, b in zip(n.ops, neighbours[0].ops)) <= 2 for n in neighbours)


def test_numpy_generator_is_accepted(rng):
    cell = moves.sample(rng)
    assert sum(a != b for a, b in zip(cell.ops, moves.mutate(cell, rng).ops)) == 1


def test_codec_imports_nothing_heavy():
    code = (
        "import sys, automl.nb201.codec;"
        "heavy = [m for m in sys.modules if m.startswith(('automl.search', 'automl.cells', "
        "'automl.kernels', 'tensorflow', 'keras'))];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kernels_import_without_search_cells_or_keras():
    code = (
        "import automl.kernels, sys;"
        "heavy = [m for m in sys.modules if m.startswith(('automl.search', 'automl.cells', "
        "'tensorflow', 'keras'))];"
        "assert not heavy, heavy;"
        "from automl.nb201 import codec as nb201;"
        "automl.kernels.as_labelled(nb201.all_cells()[7]);"
        "automl.kernels.WLKernel()([nb201.all_cells()[7], str(nb201.all_cells()[8])]);"
        "assert not any(m.startswith(('automl.search', 'automl.cells')) for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
