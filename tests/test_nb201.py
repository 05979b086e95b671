import random

import pytest

from automl.search import nb201

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


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
    assert str(cell) == EXAMPLE == cell.to_string() == cell.key()
    assert nb201.Cell.from_string(EXAMPLE) == cell


def test_all_cells_are_unique_and_round_trip():
    cells = nb201.all_cells()
    strings = [nb201.format_cell(c) for c in cells]
    assert len(cells) == nb201.NUM_CELLS == 15625
    assert len(set(strings)) == 15625
    assert all(nb201.parse(s) == c for s, c in zip(strings, cells))


def test_mutation_changes_exactly_one_edge():
    rng = random.Random(0)
    for _ in range(200):
        cell = nb201.sample(rng)
        child = nb201.mutate(cell, rng)
        assert sum(a != b for a, b in zip(cell.ops, child.ops)) == 1
    neighbours = nb201.neighbours(nb201.parse(EXAMPLE))
    assert len(set(neighbours)) == 24
    assert all(sum(a != b for a, b in zip(n.ops, neighbours[0].ops)) <= 2 for n in neighbours)


def test_numpy_generator_is_accepted(rng):
    cell = nb201.sample(rng)
    assert sum(a != b for a, b in zip(cell.ops, nb201.mutate(cell, rng).ops)) == 1


def test_bad_strings_and_ops_raise():
    with pytest.raises(ValueError, match="3 nodes"):
        nb201.parse("|nor_conv_3x3~0|")
    with pytest.raises(ValueError, match="takes inputs"):
        nb201.parse("|nor_conv_3x3~0|+|none~1|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="Unknown NAS-Bench-201 ops"):
        nb201.Cell(("conv",) * 6)


def test_to_graph_drops_none_and_dead_edges():
    # node 1 has no live input, so the edges out of it are dead too.
    cell = nb201.parse(
        "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    )
    assert nb201.live_edges(cell) == [1, 3, 5]
    graph = nb201.to_graph(cell)
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
    dead = nb201.to_graph(nb201.Cell(("nor_conv_3x3", "none", "none", "none", "none", "none")))
    assert dead.labels == ("input", "output") and dead.inputs == ((), ())


def test_packaged_table_and_one_hot():
    table = nb201.load_accuracies()
    assert len(table) == 15625
    assert max(table.values()) == pytest.approx(73.51, abs=0.01)
    vector = nb201.one_hot(nb201.parse(EXAMPLE))
    assert len(vector) == 30 and sum(vector) == 6
