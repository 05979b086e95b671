"""StrategyOracle, one lifecycle rule per test, with a stub strategy (no training)."""

import os
import time

import keras_tuner
import numpy as np
import pytest

from automl.engine.keras_tuner_api import TrialStatus
from automl.engine.oracle import ARCH, PARENT, StrategyOracle
from automl.errors import SearchError
from automl.search.base import Observation, Proposal, Strategy
from automl.search.spaces import MorphismSpace

SPACE = MorphismSpace((8, 8, 1), 10)


class StubStrategy(Strategy):
    """Proposes the space's default, then random samples; records what it was given."""

    name = "stub"

    def __init__(self, grow_from_last: bool = False):
        self.grow_from_last = grow_from_last
        self.calls: list[dict] = []

    def propose(self, space, history, rng, pending=()):
        self.calls.append(
            {"history": list(history), "pending": list(pending), "draw": rng.random()}
        )
        if not history:
            return Proposal(space.initial()[0])
        parent = history[-1] if self.grow_from_last else None
        return Proposal(space.sample(rng), parent)


def make_oracle(
    tmp_path, strategy=None, objective=("val_accuracy", "max"), max_trials=9, **kwargs
) -> StrategyOracle:
    oracle = StrategyOracle(
        strategy or StubStrategy(),
        SPACE,
        keras_tuner.Objective(*objective),
        max_trials=max_trials,
        seed=7,
        **kwargs,
    )
    oracle.set_project_dir(str(tmp_path), "project")
    return oracle


def finish(oracle, trial, score=None, message=None):
    """End a trial: COMPLETED with `score`, or FAILED with `message`."""
    if score is None:
        trial.status, trial.message = TrialStatus.FAILED, message
    else:
        oracle.update_trial(trial.trial_id, {oracle.objective.name: score})
        trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)


def test_populate_space_stores_the_strategy_arch_as_json_with_its_parent(tmp_path):
    oracle = make_oracle(tmp_path, StubStrategy(grow_from_last=True))
    first = oracle.populate_space("0")
    assert first["status"] == TrialStatus.RUNNING
    assert first["values"] == {
        ARCH: SPACE.dumps(SPACE.initial()[0]),
        PARENT: "",
        "strategy": "stub",
    }
    finish(oracle, oracle.create_trial("tuner0"), score=0.5)
    second = oracle.populate_space("1")["values"]
    assert second[PARENT] == "0"
    rng = np.random.default_rng([7, 1])
    rng.random()  # the stub's draw, then its sample
    assert second[ARCH] == SPACE.dumps(SPACE.sample(rng))


def test_proposals_draw_from_the_seed_and_trial_number(tmp_path):
    strategy = StubStrategy()
    oracle = make_oracle(tmp_path, strategy)
    for _ in range(3):
        finish(oracle, oracle.create_trial("tuner0"), score=0.5)
    draws = [call["draw"] for call in strategy.calls]
    assert draws == [np.random.default_rng([7, n]).random() for n in range(3)]


def test_a_passed_deadline_stops_without_asking_the_strategy_once_a_trial_finished(tmp_path):
    strategy = StubStrategy()
    oracle = make_oracle(tmp_path, strategy, time_limit=60)
    assert oracle.time_left() == float("inf")  # the clock has not started
    oracle.start_clock()
    assert 0 < oracle.time_left() <= 60
    oracle.deadline = time.time() - 1
    first = oracle.create_trial("tuner0")  # no model yet: the first trial always runs
    assert first.status == TrialStatus.RUNNING
    finish(oracle, first, score=0.5)
    assert oracle.populate_space("1") == {"status": TrialStatus.STOPPED}
    assert oracle.create_trial("tuner0").status == TrialStatus.STOPPED
    assert len(strategy.calls) == 1 and list(oracle.trials) == ["0"]


def test_no_trial_starts_when_two_typical_epochs_do_not_fit(tmp_path):
    from automl.project.files import write_json

    oracle = make_oracle(tmp_path, StubStrategy(), time_limit=60)
    finish(oracle, oracle.create_trial("tuner0"), score=0.5)
    write_json(os.path.join(oracle.trial_dir("0"), "summary.json"), {"seconds": 20.0, "epochs": 4})
    assert oracle.seconds_needed() == pytest.approx(10.0)  # two epochs of 5 s
    oracle.start_clock(time.time() + 9)
    assert oracle.populate_space("1") == {"status": TrialStatus.STOPPED}
    oracle.start_clock(time.time() + 30)
    assert oracle.populate_space("1")["status"] == TrialStatus.RUNNING


class FixedProposals(Strategy):
    """Proposes the given architectures in turn."""

    name = "fixed"

    def __init__(self, archs):
        self.archs = list(archs)

    def propose(self, space, history, rng, pending=()):
        return Proposal(self.archs[len(history) + len(pending)])


def test_no_trial_starts_whose_predicted_cost_does_not_fit(tmp_path):
    from automl.graph.architecture import ArchitectureGraph
    from automl.project.files import write_json

    def cnn(filters: int):
        return ArchitectureGraph.chain(
            (8, 8, 1),
            [
                ("conv2d", {"filters": filters, "kernel_size": 3}),
                ("relu", {}),
                ("gap", {}),
                ("output", {"units": 10}),
            ],
        )

    sizes = [2, 4, 8, 16, 4]  # timed trials: seconds per epoch = filters / 2
    large, same = cnn(64), cnn(4)
    oracle = make_oracle(
        tmp_path, FixedProposals([*map(cnn, sizes), large, same]), time_limit=60, max_trials=20
    )
    for i, filters in enumerate(sizes):
        trial = oracle.create_trial("tuner0")
        finish(oracle, trial, score=0.5)
        write_json(
            os.path.join(oracle.trial_dir(trial.trial_id), "summary.json"),
            {"seconds": 2.0 * filters, "epochs": 4},
        )
        if i == 0:  # one timed trial: the compute-proportional prior is not trusted
            assert oracle.observations()[0].seconds == 1.0
            assert oracle.relative_cost(large, oracle.observations()) == 1.0
    history = oracle.observations()
    assert oracle.relative_cost(same, history) == pytest.approx(1.0, abs=0.3)
    assert oracle.relative_cost(large, history) > 4  # 16x the multiply-adds
    oracle.start_clock(time.time() + 12)  # two median epochs (4 s) fit, 4x that does not
    assert oracle.populate_space("5") == {"status": TrialStatus.STOPPED}
    oracle.strategy.archs.remove(large)
    assert oracle.populate_space("5")["status"] == TrialStatus.RUNNING


def test_the_best_trials_refit_time_is_kept_free(tmp_path):
    from automl.project.files import write_json
    from automl.search.cost import refit_seconds

    summary = {"seconds": 20.0, "epochs": 4, "best_epoch": 4, "score": 0.5}
    assert refit_seconds(summary) == pytest.approx(1.1 * 2 * 5.0 * 1.25)  # 2 epochs, 1.25x data
    oracles = []
    for name, final_refit in (("plain", False), ("refit", True)):
        (tmp_path / name).mkdir()
        oracle = make_oracle(tmp_path / name, time_limit=60, final_refit=final_refit)
        finish(oracle, oracle.create_trial("tuner0"), score=0.5)
        write_json(os.path.join(oracle.trial_dir("0"), "summary.json"), summary)
        oracle.start_clock(time.time() + 20)  # two epochs (10 s) fit, with the refit they do not
        oracles.append(oracle)
    plain, refit = oracles
    assert refit.seconds_needed() == pytest.approx(plain.seconds_needed() + refit_seconds(summary))
    assert refit.trial_deadline() == pytest.approx(
        plain.trial_deadline() - refit_seconds(summary), abs=0.5
    )
    assert plain.populate_space("1")["status"] == TrialStatus.RUNNING
    assert refit.populate_space("1") == {"status": TrialStatus.STOPPED}


def test_a_trial_may_train_for_its_share_of_the_search_time(tmp_path):
    oracle = make_oracle(tmp_path, time_limit=90, trial_share=1 / 3)
    assert oracle.trial_budget() is None  # the clock has not started
    oracle.start_clock()
    assert oracle.trial_budget() == pytest.approx(30.0, abs=0.1)
    oracle.start_clock(time.time() + 60)  # the search's own deadline
    assert oracle.trial_budget() == pytest.approx(20.0, abs=0.1)
    unlimited = make_oracle(tmp_path, trial_share=1 / 3)
    unlimited.start_clock()
    assert unlimited.trial_budget() is None


def test_running_trials_are_passed_to_the_strategy_as_pending(tmp_path):
    strategy = StubStrategy()
    oracle = make_oracle(tmp_path, strategy)
    running = oracle.create_trial("tuner0")
    oracle.create_trial("tuner1")
    assert strategy.calls[0]["pending"] == []
    pending = strategy.calls[1]["pending"]
    assert [SPACE.key(a) for a in pending] == [
        SPACE.key(SPACE.loads(running.hyperparameters.values[ARCH]))
    ]
    assert strategy.calls[1]["history"] == []  # running trials are not observations


def test_failed_trials_are_passed_as_pending_so_they_are_not_proposed_again(tmp_path):
    strategy = StubStrategy()
    oracle = make_oracle(tmp_path, strategy)
    failed = oracle.create_trial("tuner0")
    finish(oracle, failed, message="diverged")
    oracle.create_trial("tuner0")
    arch = SPACE.loads(failed.hyperparameters.values[ARCH])
    assert [SPACE.key(a) for a in strategy.calls[1]["pending"]] == [SPACE.key(arch)]


@pytest.mark.parametrize("direction, sign", [("min", -1.0), ("max", 1.0)])
def test_observation_scores_are_higher_is_better(tmp_path, direction, sign):
    oracle = make_oracle(tmp_path, objective=("val_mse", direction))
    finish(oracle, oracle.create_trial("tuner0"), score=0.25)
    finish(oracle, oracle.create_trial("tuner0"), score=4.0)
    assert [o.score for o in oracle.observations()] == [sign * 0.25, sign * 4.0]
    assert [o.trial_id for o in oracle.observations()] == ["0", "1"]


def test_failed_and_running_trials_are_not_observations(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle, oracle.create_trial("tuner0"), score=0.5)
    finish(oracle, oracle.create_trial("tuner0"), message="diverged")
    oracle.create_trial("tuner0")
    assert [o.trial_id for o in oracle.observations()] == ["0"]


def test_observations_come_back_in_trial_order_after_a_reload(tmp_path):
    first = make_oracle(tmp_path, max_trials=9)  # ids "0" .. "8"
    for i in range(9):
        finish(first, first.create_trial("tuner0"), score=i / 10)
    before = first.observations()
    second = make_oracle(tmp_path, max_trials=12)  # new ids are zero-padded: "09", "10", "11"
    second.reload()
    again = second.observations()
    assert [(o.trial_id, o.score, SPACE.key(o.arch)) for o in again] == [
        (o.trial_id, o.score, SPACE.key(o.arch)) for o in before
    ]
    for i in range(9, 12):
        finish(second, second.create_trial("tuner0"), score=i / 10)
    scores = [o.score for o in second.observations()]
    assert scores == [i / 10 for i in range(12)]  # "09" after "8", "10" after "09"
    assert isinstance(second.observations()[0], Observation)


def test_max_trials_is_honoured(tmp_path):
    strategy = StubStrategy()
    oracle = make_oracle(tmp_path, strategy, max_trials=2)
    for _ in range(2):
        finish(oracle, oracle.create_trial("tuner0"), score=0.5)
    assert oracle.create_trial("tuner0").status == TrialStatus.STOPPED
    assert len(strategy.calls) == 2 and len(oracle.trials) == 2


def test_failures_in_a_row_raise_a_search_error_after_saving_the_trial(tmp_path):
    oracle = make_oracle(tmp_path, max_consecutive_failed_trials=2)
    finish(oracle, oracle.create_trial("tuner0"), message="Traceback\nValueError: first")
    finish(oracle, oracle.create_trial("tuner0"), score=0.5)  # a success resets the count
    finish(oracle, oracle.create_trial("tuner0"), message="Traceback\nValueError: second")
    with pytest.raises(SearchError, match="2 trials in a row failed.*FailedTrialError: diverged"):
        finish(
            oracle,
            oracle.create_trial("tuner0"),
            message="Traceback (most recent call last):\nFailedTrialError: diverged\n",
        )
    reloaded = make_oracle(tmp_path)
    reloaded.reload()
    assert reloaded.trials["3"].status == TrialStatus.FAILED
