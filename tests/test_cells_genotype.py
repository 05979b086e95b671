"""Genotype derivation from hand-set alphas, canonical strings, model sizes, early stopping."""

from __future__ import annotations

import numpy as np
import pytest

from automl.cells.genotype import (
    Genotype,
    ModelSizeRecord,
    darts_edges,
    derive_genotype,
    nb201_edges,
    reached_early_stop,
)
from automl.cells.ops import DARTS_OPS, NB201_OPS
from automl.nb201 import codec as nb201
from automl.nb201.space import sample  # a random codec cell

NB201_STRING = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_edges_are_sorted_by_target_then_source():
    assert darts_edges()[:5] == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert len(darts_edges()) == 14
    assert nb201_edges() == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert tuple(nb201_edges()) == nb201.EDGES and NB201_OPS == nb201.OPS


def test_nb201_derivation_is_argmax_per_edge_with_none():
    alphas = np.zeros((6, 5))
    picks = ["nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "none"]
    for row, op in enumerate(picks):
        alphas[row, NB201_OPS.index(op)] = 1.0
    genotype = derive_genotype(alphas)
    assert genotype.space == "nb201"
    assert str(genotype) == NB201_STRING.replace("skip_connect~2", "none~2")
    assert genotype.model_size == (3, 0)


def _darts_alphas(choices: dict[tuple[int, int], tuple[str, float]]) -> np.ndarray:
    alphas = np.zeros((14, 8))
    alphas[:, DARTS_OPS.index("none")] = 5.0  # `none` never counts, however strong
    for row, edge in enumerate(darts_edges()):
        if edge in choices:
            op, strength = choices[edge]
            alphas[row, DARTS_OPS.index(op)] = strength
    return alphas


def test_darts_derivation_keeps_top_two_non_none_edges():
    normal = _darts_alphas(
        {
            (0, 2): ("sep_conv_3x3", 2.0),
            (1, 2): ("sep_conv_5x5", 1.0),
            (0, 3): ("skip_connect", 0.5),
            (1, 3): ("dil_conv_3x3", 3.0),
            (2, 3): ("max_pool_3x3", 2.0),
            (4, 5): ("dil_conv_5x5", 1.0),
            (3, 5): ("sep_conv_3x3", 2.0),
            (0, 4): ("avg_pool_3x3", 1.0),
            (3, 4): ("sep_conv_5x5", 1.5),
        }
    )
    reduction = _darts_alphas({(0, 2): ("max_pool_3x3", 1.0), (1, 2): ("max_pool_3x3", 1.0)})
    genotype = derive_genotype(normal, reduction)
    nodes = genotype.normal
    assert nodes[0] == (("sep_conv_3x3", 0), ("sep_conv_5x5", 1))
    assert nodes[1] == (("dil_conv_3x3", 1), ("max_pool_3x3", 2))
    assert nodes[2] == (("avg_pool_3x3", 0), ("sep_conv_5x5", 3))
    assert nodes[3] == (("sep_conv_3x3", 3), ("dil_conv_5x5", 4))
    assert all(op != "none" for node in genotype.reduction for op, _ in node)
    assert genotype.reduction[0] == (("max_pool_3x3", 0), ("max_pool_3x3", 1))
    assert genotype.model_size == (6, 0) and reached_early_stop(genotype.model_size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strings_round_trip(seed):
    rng = np.random.default_rng(seed)
    darts = derive_genotype(rng.normal(size=(14, 8)), rng.normal(size=(14, 8)))
    nb201 = derive_genotype(rng.normal(size=(6, 5)))
    for genotype in (darts, nb201):
        again = Genotype.from_string(str(genotype))
        assert again == genotype and str(again) == str(genotype)
    assert str(Genotype.from_string(NB201_STRING)) == NB201_STRING


def test_strings_are_canonical_and_validated():
    a = Genotype.from_string("|nor_conv_1x1~0|+|none~1|skip_connect~0|+|none~2|none~1|none~0|")
    assert str(a) == "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"
    for bad in ("", "|conv|", "nor_conv_1x1~0", "normal=|a~0|"):
        with pytest.raises(ValueError):
            Genotype.from_string(bad)
    with pytest.raises(ValueError, match="shape"):
        derive_genotype(np.zeros((5, 5)))


def test_model_size_record_keeps_best_per_size_and_early_stop_rule():
    small = Genotype.from_string("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    big = Genotype.from_string(NB201_STRING)
    record = ModelSizeRecord()
    assert record.update(small, 0.5, epoch=0)
    assert not record.update(small, 0.4, epoch=1)
    assert record.update(big, 0.3, epoch=2)
    assert record.update(small, 0.5, epoch=3)  # ties go to the later epoch
    assert record.to_list() == [
        {"model_size": [0, 0], "genotype": str(small), "accuracy": 0.5, "epoch": 3},
        {"model_size": [3, 0], "genotype": str(big), "accuracy": 0.3, "epoch": 2},
    ]
    assert reached_early_stop((6, 0)) and reached_early_stop((7, 0))
    assert not reached_early_stop((6, 1)) and not reached_early_stop((5, 0))


def test_nb201_derivation_never_gives_a_dead_cell():
    from automl.cells.genotype import derive_nb201_cell

    alphas = np.zeros((6, len(NB201_OPS)))
    alphas[:, NB201_OPS.index("none")] = 5.0  # argmax: none everywhere
    alphas[1, NB201_OPS.index("nor_conv_3x3")] = 4.0  # edge 0->2: closest to none
    alphas[5, NB201_OPS.index("skip_connect")] = 3.0  # edge 2->3
    alphas[3, NB201_OPS.index("avg_pool_3x3")] = 1.0  # edge 0->3: far
    cell = derive_nb201_cell(alphas)
    assert cell == (
        (("none", 0),),
        (("nor_conv_3x3", 0), ("none", 1)),
        (("none", 0), ("none", 1), ("skip_connect", 2)),
    )


def test_nb201_genotype_and_codec_cell_round_trip(rng):
    for _ in range(300):
        cell = sample(rng)
        genotype = Genotype.from_nb201(cell)
        assert genotype.space == "nb201"
        assert str(genotype) == nb201.format_cell(cell)
        assert genotype.to_nb201() == cell
        assert Genotype.from_string(str(genotype)).to_nb201() == cell
    with pytest.raises(ValueError, match="DARTS"):
        derive_genotype(rng.normal(size=(14, 8)), rng.normal(size=(14, 8))).to_nb201()
    with pytest.raises(ValueError, match="takes inputs"):
        Genotype.from_string("|none~0|+|none~0|+|none~0|none~1|none~2|").to_nb201()


def test_derived_nb201_genotype_is_the_table_arch_of_the_alpha_argmax(rng):
    """Alpha row k is edge k of the codec: the derived string is the cell of the argmax."""
    table = nb201.load_table()
    for _ in range(200):
        alphas = rng.normal(size=(len(nb201.EDGES), len(nb201.OPS)))
        genotype = derive_genotype(alphas)
        cell = genotype.to_nb201()
        assert str(genotype) in table
        argmax = tuple(nb201.OPS[i] for i in alphas.argmax(axis=1))
        if nb201.live_edges(nb201.Cell(argmax)):
            assert cell.ops == argmax
        else:  # repaired: only `none` edges changed, and the output is reachable
            assert nb201.live_edges(cell)
            assert all(a == b or a == "none" for a, b in zip(argmax, cell.ops))
    alphas = np.full((6, 5), -1.0)
    alphas[nb201.EDGES.index((1, 2)), nb201.OPS.index("avg_pool_3x3")] = 1.0
    alphas[:, nb201.OPS.index("skip_connect")] = 0.0
    assert str(derive_genotype(alphas)) == (
        "|skip_connect~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
