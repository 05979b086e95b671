"""Stopping hopeless trials: the rules on synthetic curves, replay, the Keras callback,
and one tiny search whose second trial a forced rule stops."""

import json
import os

import keras
import keras_tuner
import numpy as np
import pytest

from automl.engine.keras_tuner_api import TrialStatus
from automl.engine.oracle import StrategyOracle
from automl.engine.summaries import read_summaries, trial_line
from automl.engine.tuner import GraphTuner
from automl.graph.builder import apply_graph
from automl.project.layout import SUMMARY_FILE
from automl.search.base import Proposal, Strategy
from automl.search.spaces import MorphismSpace
from automl.search.stopping import (
    CurveRule,
    HalvingRule,
    MedianRule,
    StoppingRule,
    make_rule,
    replay,
)
from automl.training.fit import StopHopeless, fit_trial

GOOD = [0.6, 0.8, 0.9, 0.95, 0.96, 0.97, 0.97, 0.97, 0.97, 0.97, 0.97, 0.97]
HISTORY = [GOOD, [v - 0.02 for v in GOOD], [v - 0.01 for v in GOOD]]
FLAT = [0.5, 0.51, 0.5, 0.52, 0.51, 0.5]
STEEP = [0.3, 0.6, 0.8, 0.9, 0.94]  # on its way past the incumbent
RULES = [CurveRule(), MedianRule(), HalvingRule()]


class StopAt(StoppingRule):
    """Stops every trial at epoch `epoch`; records what it was given."""

    name = "stop_at"

    def __init__(self, epoch: int):
        super().__init__(min_epochs=epoch)
        self.seen: list[tuple] = []

    def _check(self, y, finished, best, name, show, worse):
        self.seen.append((len(y), len(finished), best))
        return f"forced at epoch {len(y)}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_a_flat_low_curve_is_stopped_but_not_before_min_epochs(rule):
    stops = [rule.should_stop(FLAT[:t], HISTORY, 0.97) for t in range(1, len(FLAT) + 1)]
    first = next(t for t, reason in enumerate(stops, 1) if reason)
    assert first == rule.min_epochs
    assert all(reason is None for reason in stops[: rule.min_epochs - 1])


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_nothing_is_stopped_without_history(rule):
    for t in range(1, len(FLAT) + 1):
        assert rule.should_stop(FLAT[:t], [], None) is None
        if rule.name != "curve":  # median and halving need two finished curves at the epoch
            assert rule.should_stop(FLAT[:t], HISTORY[:1], 0.97) is None


def test_the_curve_rule_lets_a_steep_curve_run_and_says_why_it_stops():
    rule = CurveRule()
    assert all(rule.should_stop(STEEP[:t], HISTORY, 0.97) is None for t in range(1, 6))
    reason = rule.should_stop(FLAT[:4], HISTORY, 0.97, name="val_accuracy")
    assert reason.startswith("predicted final val_accuracy 0.5")
    assert reason.endswith("< best 0.97 at epoch 4")
    # a trial already at the incumbent is never stopped, however flat
    assert rule.should_stop([0.97, 0.97, 0.97, 0.97], HISTORY, 0.97) is None


def test_the_curve_rule_works_on_losses_in_their_own_units():
    losses = [1.2, 1.1, 1.1, 1.1]
    reason = CurveRule().should_stop(
        losses, [[1, 0.5, 0.3, 0.2, 0.1]], 0.1, direction="min", name="val_loss"
    )
    assert reason.startswith("predicted final val_loss 1.") and "> best 0.1 at epoch 4" in reason
    falling = [2.0, 1.0, 0.5, 0.3]
    assert CurveRule().should_stop(falling, [[1, 0.5, 0.3]], 0.25, direction="min") is None


def test_the_curve_rule_horizon():
    assert CurveRule(epochs=30).horizon(4, [10, 12]) == 30
    assert CurveRule(patience=5).horizon(4, [10, 20, 30]) == 20  # the median length
    assert CurveRule(patience=5).horizon(4, [6, 7]) == 9  # at least n + patience
    assert CurveRule(patience=5, max_epochs=8).horizon(4, [20]) == 8
    prediction, spread = CurveRule().predict(np.array([0.5, 0.75, 0.8333, 0.875]), 12)
    assert prediction == pytest.approx(1 - 0.5 / 12, abs=0.005)  # y = 1 - 0.5/t
    assert 0 < spread < 0.15


def test_median_and_halving_stop_by_their_definitions():
    median = MedianRule()
    # at epoch 3 the finished bests are 0.9, 0.88, 0.89: median 0.89
    assert median.should_stop([0.3, 0.5, 0.889], HISTORY, 0.97) is not None
    assert median.should_stop([0.3, 0.5, 0.891], HISTORY, 0.97) is None
    halving = HalvingRule()
    assert [e for e in range(1, 60) if halving.is_rung(e)] == [2, 6, 18, 54]
    # rung 2: bests 0.8, 0.78, 0.79; the 2/3 quantile is 0.7933
    assert halving.should_stop([0.1, 0.79], HISTORY, 0.97) is not None
    assert halving.should_stop([0.1, 0.795], HISTORY, 0.97) is None
    assert halving.should_stop([0.1, 0.2, 0.3], HISTORY, 0.97) is None  # not a rung


def test_make_rule_names_its_choices():
    assert make_rule(None) is None and make_rule("none") is None
    assert isinstance(make_rule("median"), MedianRule)
    assert make_rule("curve", epochs=7, patience=2).horizon(3, []) == 7
    with pytest.raises(ValueError, match="'curve', 'median', 'halving'") as err:
        make_rule("asha")
    assert "Received: stopping='asha'" in str(err.value)


CURVES = [
    [0.5, 0.7, 0.8, 0.85, 0.86],
    [0.6, 0.75, 0.85, 0.9, 0.9],
    [0.2, 0.25, 0.3, 0.3, 0.3, 0.3],
    [0.1, 0.2, 0.3, 0.4, 0.95],  # a late bloomer
]


def test_replay_counts_epochs_stops_and_regret():
    result = replay(CURVES, MedianRule())
    assert result["stopped_at"] == [None, None, 3, 3] and result["stopped"] == 2
    assert (result["epochs"], result["epochs_full"]) == (16, 21)
    assert result["saved"] == pytest.approx(5 / 21)
    assert result["best"] == 0.9 and result["best_full"] == 0.95
    assert result["regret"] == pytest.approx(0.05)
    # the late bloomer first: it sets the bar, and only the low curve stops
    result = replay(CURVES, MedianRule(), order=[3, 0, 1, 2])
    assert result["stopped_at"] == [None, None, 3, None] and result["epochs"] == 18
    assert result["regret"] == 0
    # losses: the same decisions in the other direction
    losses = [[-v for v in c] for c in CURVES]
    result = replay(losses, MedianRule(), direction="min")
    assert result["stopped_at"] == [None, None, 3, 3] and result["best"] == -0.9
    assert result["regret"] == pytest.approx(0.05)
    baseline = replay(CURVES, None)
    assert baseline["stopped"] == 0 and baseline["epochs"] == 21 and baseline["regret"] == 0


def batches(x, y, shuffle=False):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10)).astype("float32")
    y = rng.integers(0, 2, size=200).astype("int32")  # random labels: it overfits
    return batches(x[:150], y[:150]), batches(x[150:], y[150:])


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.03),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_the_callback_stops_fit_and_the_best_epoch_is_kept(rows):
    train, val = rows
    model = small_model()
    rule = StopAt(4)
    stopper = StopHopeless(rule, "val_loss", "min", [[1.0, 0.9]], 0.5)
    scores, kept, info = fit_trial(
        model,
        train,
        val,
        objective="val_loss",
        direction="min",
        max_epochs=20,
        patience=10,
        stop_rule=stopper,
    )
    assert len(scores) == 4 and info["curve"] == [round(s, 6) for s in scores]
    assert info["stopped_early"] == "forced at epoch 4" == stopper.reason
    assert rule.seen == [(4, 1, -0.5)]  # higher-is-better inside the rule
    assert kept == int(np.argmin(scores)) and kept < 3  # the val_loss rose: not the last epoch
    loss = model.evaluate(val, verbose=0)[0]
    assert loss == pytest.approx(scores[kept], abs=1e-5)  # the best epoch's weights


def test_fit_trial_without_a_rule_records_the_curve_only(rows):
    train, val = rows
    scores, kept, info = fit_trial(
        small_model(), train, val, objective="val_accuracy", direction="max", epochs=2
    )
    assert len(info["curve"]) == 2 and "stopped_early" not in info and kept == 1


def test_a_training_budget_ends_at_the_last_epoch_end_with_room_for_another(monkeypatch):
    import automl.training.fit as training

    clock = [0.0]
    monkeypatch.setattr(training.time, "time", lambda: clock[0])
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def epochs_run(budget: float, durations: list[float]) -> int:
        timer = training.StopAtDeadline(None, min_epochs=1, budget=budget)
        timer.set_model(model)
        model.stop_training = False
        timer.on_train_begin()
        for epoch, seconds in enumerate(durations):
            clock[0] += seconds
            timer.on_train_batch_end(0)  # the budget never cuts an epoch
            assert not model.stop_training
            timer.on_epoch_end(epoch)
            if model.stop_training:
                return epoch + 1
        return len(durations)

    # the first epoch traces (4 s), the others take 2 s: ends at 4, 6, 8, 10, 12
    assert epochs_run(10.0, [4, 2, 2, 2, 2, 2]) == 4  # 10 s used, another would pass 10
    assert epochs_run(9.0, [4, 2, 2, 2, 2, 2]) == 3
    assert epochs_run(1.0, [4, 2, 2]) == 1  # the first epoch always runs
    assert epochs_run(None, [4, 2, 2]) == 3


class DefaultThenSamples(Strategy):
    """The space's default, then random samples."""

    name = "default_then_samples"

    def propose(self, space, history, rng, pending=()):
        return Proposal(space.sample(rng) if history else space.initial()[0])


def build(graph):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, apply_graph(graph, inputs))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_a_search_stops_the_second_trial_and_records_why(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
    oracle = StrategyOracle(
        DefaultThenSamples(),
        MorphismSpace((4,), 3),
        keras_tuner.Objective("val_loss", "min"),
        max_trials=2,
        seed=3,
    )
    rule = StopAt(2)
    tuner = GraphTuner(
        oracle,
        build,
        batches,
        max_epochs=4,
        patience=4,
        stopping=rule,
        directory=str(tmp_path),
        project_name="p",
    )
    tuner.search((x[:64], y[:64]), (x[64:], y[64:]))
    first, second = tuner.trial_summary("0"), tuner.trial_summary("1")
    assert oracle.finished_summaries() == [first, second]
    assert read_summaries(tuner.project_dir) == [first, second]  # what a worker reads
    assert len(first["curve"]) == 4 and "stopped_early" not in first
    assert rule.seen == [(2, 1, pytest.approx(-min(first["curve"])))]  # trial 0 is the history
    assert second["stopped_early"] == "forced at epoch 2" and second["epochs"] == 2
    trial = tuner.oracle.get_trial("1")
    assert trial.status == TrialStatus.COMPLETED
    assert trial.score == pytest.approx(min(second["curve"]), abs=1e-6)
    with open(os.path.join(tuner.get_trial_dir("1"), SUMMARY_FILE)) as f:
        assert json.load(f)["stopped_early"] == "forced at epoch 2"
    assert "2 epochs, stopped early" in trial_line("1", "val_loss", trial.score, second)


def test_the_tuner_refuses_an_unknown_rule(tmp_path):
    oracle = StrategyOracle(
        DefaultThenSamples(),
        MorphismSpace((4,), 3),
        keras_tuner.Objective("val_loss", "min"),
        max_trials=1,
        seed=3,
    )
    with pytest.raises(ValueError, match="Received: stopping='sometimes'"):
        GraphTuner(oracle, build, batches, stopping="sometimes", directory=str(tmp_path))
