"""A trial's learning rate decays to its planned last epoch; a trial from scratch gets the
time to converge, and does not start without it."""

import os
import time

import keras
import keras_tuner
import numpy as np
import pytest

from automl.data.arrays import as_dataset
from automl.engine.keras_tuner_api import TrialStatus
from automl.engine.oracle import StrategyOracle
from automl.project.files import write_json
from automl.search.base import Proposal, Strategy
from automl.search.spaces import MorphismSpace
from automl.training.fit import ScheduleToPlan, StopAtDeadline, fit_trial


def timed(budget=None, deadline_in=None, converge=None, ends=(2.0,)):
    """A `StopAtDeadline` as if its epochs had ended at `ends` seconds."""
    timer = StopAtDeadline(None, min_epochs=1, budget=budget, converge_epochs=converge)
    timer.started = time.time()
    if deadline_in is not None:
        timer.deadline = timer.started + deadline_in
    timer.epoch_ends = list(ends)
    timer.epochs_done = len(ends)
    return timer


def test_the_plan_is_as_many_epochs_as_the_budget_holds():
    assert timed(budget=10.0).planned_epochs(200) == 5  # 2 s epochs: 2, 4, 6, 8, 10
    assert timed(budget=10.0, ends=(3.0, 4.0)).planned_epochs(200) == 8  # 1 s after tracing
    assert timed(budget=10.0).planned_epochs(3) == 3  # at most max_epochs
    assert timed().planned_epochs(200) is None  # no limit: no plan


def test_the_first_batch_tracing_is_not_counted_as_a_typical_epoch():
    timer = timed(budget=20.0, ends=(9.0,))
    assert timer.planned_epochs(200) == 2  # as if every epoch took 9 s
    timer.first_batch = 6.0  # the first batch traced the step: epochs take about 3 s
    assert timer.planned_epochs(200) == 4


def test_converge_epochs_grow_the_budget_but_the_deadline_still_bounds_it():
    assert timed(budget=10.0, converge=8).planned_epochs(200) == 8
    assert timed(budget=10.0, converge=8, deadline_in=9.0).planned_epochs(200) == 4
    assert timed(budget=30.0, converge=8).planned_epochs(200) == 15  # the share is larger


def test_the_rate_decays_to_a_few_percent_at_the_planned_last_epoch():
    schedule = ScheduleToPlan(timed(), max_epochs=200, fixed_epochs=8)
    schedule.base = 1e-3
    rates = [schedule.rate(k) for k in range(8)]
    assert rates[0] == 1e-3
    assert all(a > b for a, b in zip(rates, rates[1:]))  # strictly decreasing
    assert 0 < rates[-1] < 0.05 * 1e-3
    assert 0 < schedule.rate(12) <= rates[-1]  # past the plan: small, never zero


def tiny_problem(seed: int):
    """A compiled softmax regression (Adam 0.01) and 64 rows whose class is a column's sign."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(
        keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    x = np.random.default_rng(seed).normal(size=(64, 4)).astype("float32")
    return model, x, (x[:, seed] > 0).astype("int32")


def test_a_timed_plan_sets_the_rates_and_training_ends_at_the_base_rate():
    model, x, y = tiny_problem(0)
    timer = StopAtDeadline(None, min_epochs=1)
    schedule = ScheduleToPlan(timer, max_epochs=5, fixed_epochs=5)
    model.fit(x, y, epochs=5, callbacks=[timer, schedule], verbose=0)
    assert len(schedule.rates) == 5 and schedule.rates[0] == pytest.approx(0.01)
    assert schedule.rates[-1] < 0.001
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)


def test_fit_trial_schedules_fixed_epochs_and_keeps_the_last():
    model, x, y = tiny_problem(1)
    data = as_dataset(x, y, batch_size=16)
    scores, kept, info = fit_trial(
        model, data, data, objective="val_accuracy", direction="max", epochs=3, schedule=True
    )
    assert len(scores) == 3 and kept == 2 and len(info["curve"]) == 3


class FreshThenChild(Strategy):
    """Proposes from scratch, then (with `child`) a child of the last finished trial."""

    name = "fresh_then_child"

    def __init__(self, child: bool):
        self.child = child

    def propose(self, space, history, rng, pending=()):
        parent = history[-1] if (history and self.child) else None
        return Proposal(space.initial()[0], parent)


@pytest.mark.parametrize("child, starts", [(False, False), (True, True)])
def test_a_trial_from_scratch_starts_only_with_time_to_converge(tmp_path, child, starts):
    oracle = StrategyOracle(
        FreshThenChild(child),
        MorphismSpace((8, 8, 1), 10),
        keras_tuner.Objective("val_accuracy", "max"),
        max_trials=9,
        time_limit=600,
        converge_epochs=8,
    )
    oracle.set_project_dir(str(tmp_path), "project")
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    summary = {"seconds": 20.0, "epochs": 4, "score": 0.5}  # 5 s epochs
    write_json(os.path.join(oracle.trial_dir("0"), "summary.json"), summary)
    oracle.start_clock(time.time() + 25)  # room for two epochs, not for eight
    status = oracle.populate_space("1")["status"]
    assert status == (TrialStatus.RUNNING if starts else TrialStatus.STOPPED)


def test_without_max_trials_a_time_limit_decides_how_many_trials_run():
    from automl.estimators.options import trial_limit

    assert trial_limit(None, None) == (10, False)
    assert trial_limit(None, 60.0) == (999, True)  # trials go on while the time lasts
    assert trial_limit(4, 60.0) == (4, False)  # a cap the user chose
    assert trial_limit(4, None) == (4, False)


def test_max_trials_none_is_accepted_and_zero_is_refused():
    import automl
    from automl.errors import InputError

    x = np.zeros((20, 8, 8), "float32")
    y = np.arange(20) % 2
    with pytest.raises(InputError, match="max_trials must be a positive integer"):
        automl.ImageClassifier(max_trials=0).fit(x, y)
    assert automl.ImageClassifier().max_trials is None
