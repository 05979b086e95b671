"""GraphTuner, one lifecycle rule per test: tiny MLPs on 4 features, 1 to 3 epochs."""

import json
import os

import keras
import keras_tuner
import numpy as np
import pytest

from automl.engine.keras_tuner_api import TrialStatus
from automl.engine.oracle import ARCH, StrategyOracle
from automl.engine.tuner import GraphTuner
from automl.graph.builder import apply_graph
from automl.morphism.operators import random_children
from automl.project.layout import SUMMARY_FILE
from automl.search.base import Proposal, Strategy, fresh_sample
from automl.search.spaces import MorphismSpace

SPACE = MorphismSpace((4,), 3)


class GrowStrategy(Strategy):
    """First an unseen default or sample; then a morphism child of the last finished trial."""

    name = "grow"

    def propose(self, space, history, rng, pending=()):
        if not history:
            return Proposal(fresh_sample(space, self.seen_keys(space, history, pending), rng))
        parent = history[-1]
        return Proposal(random_children(parent.arch, rng, n=1)[0], parent)


def nan_metric(y_true, y_pred):
    """A metric that is never finite, as after a diverged training."""
    return keras.ops.mean(y_pred) * float("nan")


def build(graph, nan_keys=()):
    """A compiled model of `graph` on 4 features; its "bad" metric is NaN for `nan_keys`."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, apply_graph(graph, inputs))

    def bad(y_true, y_pred):
        return nan_metric(y_true, y_pred) if graph.key() in nan_keys else keras.ops.mean(y_pred)

    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", bad],
    )
    return model


def batches(x, y, shuffle=False):
    """The tuner's input data: (x, y) in batches of 16."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
    return x, (x[:64], y[:64]), (x[64:], y[64:])


def make_tuner(
    tmp_path, objective=("val_loss", "min"), max_trials=1, build_fn=build, space=SPACE, **kwargs
) -> GraphTuner:
    oracle = StrategyOracle(
        GrowStrategy(), space, keras_tuner.Objective(*objective), max_trials=max_trials, seed=3
    )
    return GraphTuner(
        oracle, build_fn, batches, directory=str(tmp_path), project_name="p", **kwargs
    )


@pytest.mark.parametrize("epochs", [2, None])
def test_a_trial_saves_weights_and_the_score_of_the_kept_epoch(tmp_path, data, epochs):
    x, train, val = data
    tuner = make_tuner(tmp_path, epochs=epochs, patience=1, max_epochs=3)
    tuner.search(train, val)
    trial = tuner.oracle.get_trial("0")
    assert trial.status == TrialStatus.COMPLETED
    assert os.path.exists(tuner.weights_path("0"))
    with open(os.path.join(tuner.get_trial_dir("0"), SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert summary["score"] == pytest.approx(trial.score)
    assert summary["key"] == SPACE.initial()[0].key() and summary["parent"] == ""
    assert 1 <= summary["best_epoch"] <= summary["epochs"] <= (epochs or 3)
    if epochs:
        assert summary["best_epoch"] == epochs  # no early stopping: the last epoch is kept
    saved = tuner.load_model(trial).evaluate(batches(*val), verbose=0, return_dict=True)
    assert saved["loss"] == pytest.approx(summary["score"], abs=1e-5)  # it scores the saved model


def test_a_child_starts_from_its_parent_function(tmp_path, data):
    x, train, val = data
    tuner = make_tuner(tmp_path, max_trials=2, epochs=1)
    tuner.search(train, val)
    assert tuner.trial_summary("1")["parent"] == "0"
    parent = tuner.load_model(tuner.oracle.get_trial("0"))
    child_graph = tuner.trial_graph("1")
    assert child_graph.key() != tuner.trial_graph("0").key()
    child = tuner.build_fn(child_graph)
    before = parent.predict(x, verbose=0)
    assert np.abs(child.predict(x, verbose=0) - before).max() > 1e-3  # a fresh model differs
    tuner._inherit("1", child, child_graph, "0")
    np.testing.assert_allclose(child.predict(x, verbose=0), before, atol=1e-5)


def test_a_non_finite_score_fails_the_trial_and_the_search_goes_on(tmp_path, data):
    x, train, val = data
    first = SPACE.initial()[0].key()
    tuner = make_tuner(
        tmp_path,
        objective=("val_bad", "min"),
        max_trials=2,
        epochs=1,
        build_fn=lambda graph: build(graph, nan_keys=(first,)),
    )
    tuner.search(train, val)  # no exception
    failed, done = tuner.oracle.get_trial("0"), tuner.oracle.get_trial("1")
    assert failed.status == TrialStatus.FAILED
    assert "FailedTrialError" in failed.message and "diverged" in failed.message
    assert not os.path.exists(tuner.weights_path("0"))
    assert done.status == TrialStatus.COMPLETED and np.isfinite(done.score)
    assert [o.trial_id for o in tuner.oracle.observations()] == ["1"]
    assert done.hyperparameters.values[ARCH] != failed.hyperparameters.values[ARCH]


def test_out_of_memory_fails_the_trial_and_lowers_the_size_cap_for_good(tmp_path, data):
    x, train, val = data
    space = MorphismSpace((4,), 3)
    first = space.initial()[0]

    def oom_once(graph):
        if graph.key() == first.key():
            raise MemoryError("Unable to allocate 4.0 GiB")
        return build(graph)

    tuner = make_tuner(tmp_path, max_trials=2, epochs=1, build_fn=oom_once, space=space)
    tuner.search(train, val)
    failed = tuner.oracle.get_trial("0")
    assert failed.status == TrialStatus.FAILED and "out of memory" in failed.message
    cap = space.max_model_size
    assert cap < first.count_params()
    assert tuner.oracle.get_trial("1").status == TrialStatus.COMPLETED
    again = make_tuner(tmp_path, max_trials=2, epochs=1, space=MorphismSpace((4,), 3))
    assert again.oracle.space.max_model_size == cap  # the cap survives a resume


def test_a_child_of_a_parent_with_damaged_weights_fails_and_so_does_the_parent(tmp_path, data):
    x, train, val = data
    tuner = make_tuner(tmp_path, max_trials=1, epochs=1)
    tuner.search(train, val)
    with open(tuner.weights_path("0"), "r+b") as f:  # valid length, other bytes
        f.seek(-64, os.SEEK_END)
        tail = f.read()
        f.seek(-64, os.SEEK_END)
        f.write(bytes(b ^ 0xFF for b in tail))
    tuner = make_tuner(tmp_path, max_trials=2, epochs=1)
    tuner.search(train, val)
    parent, child = tuner.oracle.get_trial("0"), tuner.oracle.get_trial("1")
    assert child.status == TrialStatus.FAILED
    assert "Cannot grow from trial 0" in child.message and "model.weights.h5" in child.message
    assert parent.status == TrialStatus.FAILED and "checksum" in parent.message
    assert tuner.oracle.observations() == []


@pytest.mark.parametrize("name", ["oracle.json", "trial_0/trial.json", "tuner0.json"])
def test_a_damaged_state_file_is_named_when_the_search_is_reopened(tmp_path, data, name):
    from automl.errors import InputError

    x, train, val = data
    make_tuner(tmp_path, max_trials=1, epochs=1).search(train, val)
    path = tmp_path / "p" / name
    path.write_text(path.read_text()[: len(path.read_text()) // 2])  # torn
    with pytest.raises(InputError, match=f"{name}.*overwrite=True"):
        make_tuner(tmp_path, max_trials=2, epochs=1)


def test_a_nan_loss_stops_training_at_that_batch():
    from automl.errors import TrainingDiverged
    from automl.training.fit import fit_trial

    model = build(SPACE.initial()[0])
    x = np.ones((64, 4), "float32")
    x[20] = np.nan  # the second batch of 16
    ds = batches(x, np.zeros(64, "int32"))
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 1"):
        fit_trial(model, ds, ds, objective="val_loss", direction="min", epochs=50)
    assert int(model.optimizer.iterations.numpy()) == 2  # not 50 epochs of NaN
