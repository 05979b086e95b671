"""Cost-aware acquisition, training-free screening in the search, the naswot strategy."""

import numpy as np
import pytest

import automl
from automl.graph.architecture import ArchitectureGraph
from automl.nb201 import codec as nb201
from automl.nb201.space import NB201Space
from automl.search.base import Observation, get_strategy
from automl.search.cost import CostModel, activations, cost_features, multiply_adds
from automl.search.strategies.bayesian import BayesianOptimization
from automl.search.strategies.naswot import ScreeningSearch


def _convs(cell) -> int:
    return sum(cell.ops[i] == "nor_conv_3x3" for i in nb201.live_edges(cell))


def _score(cell) -> float:
    """Convolutions help a little, and cost a lot (see `_CostlySpace`)."""
    live = nb201.live_edges(cell)
    return _convs(cell) + 0.5 * sum(cell.ops[i] == "nor_conv_1x1" for i in live)


class _CostlySpace(NB201Space):
    """NB201 cells whose epoch time grows 4x per live 3x3 convolution."""

    def cost_features(self, cell):
        return np.array([0.0, np.log(4.0) * _convs(cell)])

    def seconds(self, cell) -> float:
        return float(np.exp(self.cost_features(cell)[1]))


def _history(space, n: int, seed: int) -> list[Observation]:
    rng, seen, out = np.random.default_rng(seed), set(), []
    while len(out) < n:
        cell = space.sample(rng)
        if space.key(cell) not in seen:
            seen.add(space.key(cell))
            out.append(Observation(cell, _score(cell), str(len(out)), space.seconds(cell)))
    return out


def test_cost_features_count_compute_per_position():
    graph = ArchitectureGraph.chain(
        (8, 8, 1),
        [
            ("conv2d", {"filters": 4, "kernel_size": 3}),
            ("relu", {}),
            ("gap", {}),
            ("output", {"units": 10}),
        ],
    )
    conv = 3 * 3 * 1 * 4 + 4  # weights and biases, applied at each of the 8x8 positions
    assert multiply_adds(graph) == conv * 64 + (4 * 10 + 10)
    assert activations(graph) == 64 + 2 * 8 * 8 * 4 + 4 + 10  # input, conv, relu, gap, output
    np.testing.assert_allclose(
        cost_features(graph),
        np.log1p([graph.count_params(), multiply_adds(graph), activations(graph)]),
    )


def test_cost_model_learns_seconds_and_is_relative_to_the_median():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, size=(11, 3))  # odd: the median is one of them
    seconds = np.exp(0.3 + 0.8 * x[:, 1] + 0.2 * x[:, 2])
    model = CostModel(ridge=1e-6).fit(x, seconds)
    np.testing.assert_allclose(model.log_seconds(x), np.log(seconds), atol=1e-3)
    relative = model.relative_cost(x)
    assert np.median(relative) == pytest.approx(1.0, rel=1e-3)
    # with few timed trials: seconds proportional to the compute feature, scale fitted
    few = CostModel().fit(x[:2], np.exp(x[:2, 1] + 1.0))
    np.testing.assert_allclose(few.log_seconds(x[2:]), x[2:, 1] + 1.0)


def test_expected_improvement_per_second_divides_by_the_cost():
    class FixedGP:
        def predict(self, graphs, return_std=False):
            return np.array([2.0, 2.0]), np.array([0.5, 0.5])

    strategy = BayesianOptimization(cost_aware=True)
    plain = strategy.acquire(FixedGP(), [None, None], best=1.5)
    per_second = strategy.acquire(FixedGP(), [None, None], best=1.5, cost=np.array([1.0, 4.0]))
    np.testing.assert_allclose(per_second, plain / [1.0, 4.0])
    assert BayesianOptimization(cost_exponent=0.0).acquire(
        FixedGP(), [None, None], best=1.5, cost=np.array([1.0, 4.0])
    ) == pytest.approx(plain)


def test_a_cost_aware_search_proposes_cheaper_architectures():
    space = _CostlySpace()
    plain, aware = (
        BayesianOptimization(n_initial=5),
        BayesianOptimization(n_initial=5, cost_aware=True),
    )
    plain_costs, aware_costs = [], []
    for seed in range(4):
        history = _history(space, 12, seed)
        for strategy, costs in ((plain, plain_costs), (aware, aware_costs)):
            proposal = strategy.propose(space, history, np.random.default_rng(seed))
            costs.append(space.seconds(proposal.arch))
    assert np.mean(aware_costs) < np.mean(plain_costs)
    assert get_strategy("bayesian", **aware.get_config()).cost_aware  # the config round-trips


def test_screening_drops_the_candidates_below_the_median_score():
    space = NB201Space()
    cells = [space.sample(np.random.default_rng(i)) for i in range(4)]
    scores = {space.key(c): s for c, s in zip(cells, [1.0, 5.0, 6.0, 0.0])}
    space.screen = lambda archs: [scores[space.key(a)] for a in archs]
    strategy = BayesianOptimization(screen_top=4)
    scored = [(4.0 - i, cell, None) for i, cell in enumerate(cells)]  # values 4, 3, 2, 1
    assert strategy.screened(space, scored)[1] is cells[1]  # cells[0] scores below the median
    space.screen = lambda archs: [-np.inf] * len(archs)  # no usable score: the best value
    assert strategy.screened(space, scored)[1] is cells[0]
    with pytest.raises(ValueError, match="screen_top"):
        BayesianOptimization(screen_top=-1)


def test_naswot_strategy_proposes_the_best_screened_candidate():
    space = NB201Space()
    with pytest.raises(ValueError, match="needs a space that can screen"):
        ScreeningSearch().propose(space, [], np.random.default_rng(0))
    asked = []

    def screen(archs):
        asked.extend(archs)
        return [_score(a) for a in archs]

    space.screen = screen
    history = _history(_CostlySpace(), 6, seed=0)
    proposal = ScreeningSearch(n_samples=8, n_parents=2).propose(
        space, history, np.random.default_rng(0)
    )
    assert _score(proposal.arch) == max(_score(a) for a in asked)
    assert space.key(proposal.arch) not in {space.key(o.arch) for o in history}
    assert len(asked) > 8  # the fresh samples and the neighbours of the best two
    if proposal.parent is not None:  # a neighbour keeps the trained parent it grew from
        assert proposal.parent in sorted(history, key=lambda o: -o.score)[:2]


def test_naswot_strategy_searches_images_end_to_end(tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    clf = automl.ImageClassifier(
        strategy="naswot",
        max_trials=2,
        epochs=1,
        ensemble_size=1,
        max_model_size=30_000,
        directory=tmp_path,
        verbose=0,
    )
    clf.fit(x[:300].reshape(-1, 8, 8), y[:300])
    summary = clf.search_summary()
    assert len(summary) == 2 and set(summary["strategy"]) == {"naswot"}
    screen = clf.backend_.oracle.space.screen
    assert len(screen.scores) >= 2 and np.isfinite(list(screen.scores.values())).any()
    trained = {row["key"] for _, row in summary.iterrows()}
    best_screened = max(screen.scores, key=screen.scores.get)
    assert trained & set(screen.scores)  # what it trained is what it screened
    assert best_screened in trained or len(screen.scores) > 2
