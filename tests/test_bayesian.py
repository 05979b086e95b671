import csv
import json

import numpy as np
import pytest

from automl.cli import commands as cli
from automl.nb201 import codec as nb201
from automl.nb201 import space as moves
from automl.nb201.space import NB201Space
from automl.search.base import Observation, get_strategy
from automl.search.strategies.bayesian import BayesianOptimization
from automl.search.strategies.evolution import RegularizedEvolution


def _score(cell) -> float:
    """A made-up score with structure a GP can learn: convolutions on live edges."""
    live = nb201.live_edges(cell)
    convs = sum(cell.ops[i] == "nor_conv_3x3" for i in live)
    return 10.0 * convs + sum(cell.ops[i] == "nor_conv_1x1" for i in live) + 0.1 * len(live)


def _history(n: int, seed: int = 0) -> list[Observation]:
    space, rng, seen, out = NB201Space(), np.random.default_rng(seed), set(), []
    while len(out) < n:
        cell = space.sample(rng)
        if space.key(cell) not in seen:
            seen.add(space.key(cell))
            out.append(Observation(cell, _score(cell), str(len(out))))
    return out


def test_annealing_search_returns_an_unseen_neighbour_of_a_trained_root():
    space, history = NB201Space(), _history(15)
    pending = [history[0].arch, moves.neighbours(max(history, key=lambda o: o.score).arch)[0]]
    proposal = BayesianOptimization(n_initial=5).propose(
        space, history[1:], np.random.default_rng(0), pending
    )
    assert space.key(proposal.arch) not in {space.key(a) for a in pending}
    assert space.key(proposal.arch) not in {space.key(o.arch) for o in history}
    assert proposal.parent in history[1:]  # the trained root the search grew it from


def test_gp_posterior_mean_interpolates_the_observed_scores():
    space, history = NB201Space(), _history(15, seed=1)
    y = np.array([o.score for o in history])
    gp = BayesianOptimization(floor_quantile=0.0).fit_gp(space, history)
    mu, sd = gp.predict([space.to_graph(o.arch) for o in history], return_std=True)
    np.testing.assert_allclose(mu, y, atol=0.01 * y.std())  # the scores are noise-free
    assert sd.max() < 0.05 * y.std()


class _FixedGP:
    """A stand-in GP with given posterior means and standard deviations."""

    def __init__(self, mu, sigma):
        self.mu, self.sigma = np.asarray(mu, float), np.asarray(sigma, float)

    def predict(self, graphs, return_std=False):
        return (self.mu, self.sigma) if return_std else self.mu


def test_acquisitions_prefer_higher_means_and_more_uncertainty():
    from scipy.stats import norm

    ei = BayesianOptimization(acquisition="ei")
    values = ei.acquire(_FixedGP([1.0, 2.0, 2.0], [0.5, 0.5, 1.0]), [None] * 3, best=1.5)
    assert values[0] < values[1] < values[2]
    z = (2.0 - 1.5) / 0.5
    assert values[1] == pytest.approx(0.5 * norm.cdf(z) + 0.5 * norm.pdf(z))
    ucb = BayesianOptimization(acquisition="ucb", beta=2.0)
    values = ucb.acquire(_FixedGP([1.0, 2.0, 2.0], [0.5, 0.5, 1.0]), [None] * 3, best=1.5)
    np.testing.assert_allclose(values, [2.0, 3.0, 4.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_proposal_follows_the_history(seed):
    space, history = NB201Space(), _history(15, seed=seed)
    best = max(history, key=lambda o: o.score)
    strategy = BayesianOptimization(n_initial=5)
    proposal = strategy.propose(space, history, np.random.default_rng(0))
    assert proposal.parent is best  # grown from the best trained cell
    assert _score(proposal.arch) > best.score  # and better than every cell seen
    flipped = [Observation(o.arch, -o.score, o.trial_id) for o in history]
    other = strategy.propose(space, flipped, np.random.default_rng(0))
    assert space.key(other.arch) != space.key(proposal.arch)
    assert other.parent is max(flipped, key=lambda o: o.score)


def test_a_rebuilt_strategy_proposes_the_same_after_a_resume():
    space, history = NB201Space(), _history(14, seed=3)
    first = BayesianOptimization(n_initial=5)
    proposal = first.propose(space, history, np.random.default_rng([3, 14]))
    # A resumed search reloads the trials from disk and builds a new strategy.
    reloaded = [Observation(space.loads(space.dumps(o.arch)), o.score, o.trial_id) for o in history]
    second = get_strategy("bayesian", **first.get_config())
    again = second.propose(space, reloaded, np.random.default_rng([3, 14]))
    assert space.key(again.arch) == space.key(proposal.arch)
    assert space.key(again.parent.arch) == space.key(proposal.parent.arch)
    queries = [space.to_graph(c) for c in nb201.all_cells()[:50]]
    mu1, sd1 = first.fit_gp(space, history).predict(queries, return_std=True)
    mu2, sd2 = second.fit_gp(space, reloaded).predict(queries, return_std=True)
    np.testing.assert_allclose(mu1, mu2)
    np.testing.assert_allclose(sd1, sd2)


def test_first_proposals_are_random_and_distinct():
    space, strategy, history = NB201Space(), BayesianOptimization(n_initial=4), []
    for i in range(4):
        arch = strategy.propose(space, history, np.random.default_rng([1, i])).arch
        history.append(Observation(arch, _score(arch)))
    assert len({space.key(o.arch) for o in history}) == 4


def test_rejects_unknown_settings():
    with pytest.raises(ValueError, match="acquisition"):
        BayesianOptimization(acquisition="pi")
    with pytest.raises(ValueError, match="Unknown kernel"):
        BayesianOptimization(kernel="rbf")


def test_evolution_mutates_the_tournament_winner_after_the_initial_population():
    space, history = NB201Space(), _history(13)
    strategy = RegularizedEvolution(population_size=10, sample_size=3)
    for seed in range(5):
        proposal = strategy.propose(space, history, np.random.default_rng(seed))
        population = history[-10:]
        picks = np.random.default_rng(seed).choice(10, size=3, replace=False)
        winner = max((population[i] for i in picks), key=lambda o: o.score)
        assert proposal.parent is winner
        neighbours = {space.key(c) for c in moves.neighbours(winner.arch)}
        assert space.key(proposal.arch) in neighbours
    early = strategy.propose(space, history[:5], np.random.default_rng(0))
    assert early.parent is None  # still filling the initial random population


def test_benchmark_command_writes_the_documented_json(tmp_path, capsys):
    table = tmp_path / "table.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "score"])
        for cell in nb201.all_cells():
            writer.writerow([cell.to_string(), _score(cell)])
    out = tmp_path / "bench.json"
    code = cli.main(
        [
            "benchmark",
            "nb201",
            "--table",
            str(table),
            "--column",
            "score",
            "--strategy",
            "bayesian,evolution,random",
            "--kernel",
            "wl",
            "--budget",
            "12",
            "--seeds",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert {"table", "column", "optimum", "results"} <= set(result)
    assert result["column"] == "score" and result["optimum"] == pytest.approx(60.6)
    assert [r["strategy"] for r in result["results"]] == ["bayesian", "evolution", "random"]
    for r in result["results"]:
        keys = {"strategy", "kernel", "budgets", "mean_best", "std_best", "seconds_per_query"}
        assert keys <= set(r)
        assert r["budgets"] == [10, 12]
        assert len(r["mean_best"]) == len(r["std_best"]) == 2
        assert r["mean_best"][0] <= r["mean_best"][1] <= result["optimum"]
        assert r["seconds_per_query"] >= 0
    assert result["results"][0]["kernel"] == "wl"
    assert "regret" in capsys.readouterr().out


def test_graph_gp_matches_scikit_learn_at_its_hyperparameters():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel

    from automl.search.strategies.bayesian import GraphGP, make_kernel

    space, history = NB201Space(), _history(40, seed=5)
    graphs = [space.to_graph(o.arch) for o in history]
    y = np.array([o.score for o in history])
    ours = GraphGP(make_kernel("wl")).fit(graphs, y)
    kernel = ConstantKernel(ours.amplitude_) * ours.kernel_ + WhiteKernel(ours.noise_)
    theirs = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None).fit(graphs, y)
    queries = [space.to_graph(c) for c in nb201.all_cells()[::500]]
    mu, sd = ours.predict(queries, return_std=True)
    mu_sk, sd_sk = theirs.predict(queries, return_std=True)
    np.testing.assert_allclose(mu, mu_sk, rtol=1e-6, atol=1e-6)
    noise_var = ours.noise_ * ours.std_**2  # scikit-learn's std includes the noise
    np.testing.assert_allclose(sd**2 + noise_var, sd_sk**2, rtol=1e-5, atol=1e-6)
    n = len(y)  # the same likelihood, up to the constants scikit-learn keeps
    expected = ours.log_marginal_likelihood_value_ - 0.5 * n * (1 + np.log(2 * np.pi))
    assert theirs.log_marginal_likelihood_value_ == pytest.approx(expected, rel=1e-4)
