"""Keras backends: the supernet's compiled steps, and models that move between backends.

The first tests run on whichever backend the suite runs on (CI runs this file on
TensorFlow and on JAX). The cross-backend tests run on TensorFlow and start one JAX
process (tests/backend_run.py) that works on the same weights, data and files; that
process takes over a minute on 2 CPU cores, so they are marked slow (`pytest -m slow`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from automl.cells import backend
from automl.cells.supernet import METHODS
from automl.errors import InputError

sys.path.insert(0, os.path.dirname(__file__))
import backend_run  # noqa: E402


@pytest.mark.parametrize("method", METHODS)
def test_compiled_steps_equal_the_same_steps_taken_one_call_at_a_time(method):
    """Keras's compiled train step (one jitted program on JAX) carries every piece of
    state the eager steps do: alphas, weights, both optimizers' moments, BN statistics."""
    compiled, eager = backend_run.supernet(), backend_run.supernet()
    eager.set_weights(compiled.get_weights())
    initial = {id(v): np.array(v) for v in compiled.weights}
    after = backend_run.compiled_steps(compiled, method)
    eager.compile(method=method)
    train, val = backend_run.search_pair()
    for _ in range(2):
        eager.weight_step(train, eager.alpha_step(train, val))
    assert len(after) == len(eager.weights) > len(eager.trainable_variables)
    for got, want in zip(after, eager.weights, strict=True):
        np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5, err_msg=want.path)
    moved = [
        not np.allclose(a, initial[id(v)])
        for a, v in zip(after, compiled.weights)
        if id(v) in initial
    ]
    assert sum(moved) > len(compiled.trainable_variables) // 2


def test_the_alpha_optimizer_state_is_carried_from_step_to_step():
    net = backend_run.supernet()
    plain = {id(v) for v in net.non_trainable_variables}
    net.compile(method="milenas")
    backend_run.compiled_steps(net, "darts1")  # compiles again, with a new alpha optimizer
    iterations = [int(np.array(o.iterations)) for o in (net.weight_optimizer, net.alpha_optimizer)]
    assert iterations == [2, 2]
    state = {id(v) for v in net.non_trainable_variables} - plain
    assert state == {id(v) for v in net.alpha_optimizer.variables}  # the first one's is gone


def test_an_unsupported_backend_gets_a_clear_error(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(InputError, match=r"KERAS_BACKEND='torch'.*graph strategies"):
        backend.current()


def test_a_search_fits_exports_and_reloads_on_this_backend(tmp_path):
    import automl
    from automl.export.keras_file import load_model, predict_with, save_model

    x, y = backend_run.table()
    clf = automl.StructuredDataClassifier(
        max_trials=2, epochs=3, seed=0, verbose=0, directory=tmp_path
    )
    clf.fit(x, y)
    summary = clf.search_summary()
    assert (summary["status"] == "COMPLETED").sum() == 2
    path = save_model(clf, tmp_path / "model.keras")
    model, preprocessor, target = load_model(path)
    np.testing.assert_array_equal(predict_with(model, preprocessor, target, x), clf.predict(x))
    assert clf.evaluate(x, y)["accuracy"] > 0.6


def test_out_of_memory_is_recognised_as_each_backend_raises_it():
    from automl.training.fit import is_out_of_memory

    class XlaRuntimeError(RuntimeError):  # jax.errors.JaxRuntimeError's shape
        pass

    jax_error = XlaRuntimeError(
        "RESOURCE_EXHAUSTED: Failed to allocate request for 2.00GiB (2147483648B) on device "
        "ordinal 0"
    )
    assert is_out_of_memory(jax_error) and is_out_of_memory(MemoryError())
    assert not is_out_of_memory(XlaRuntimeError("INVALID_ARGUMENT: shapes (3,) and (4,)"))


def test_batches_for_backends_without_tf_data_cover_every_row():
    from automl.cells.search import PairedBatches
    from automl.data.arrays import array_batches

    train = (np.arange(10, dtype="float32")[:, None], np.arange(10))
    val = (np.arange(7, dtype="float32")[:, None], np.arange(7) + 100)
    pairs = PairedBatches(train, val, batch_size=3, seed=0)
    assert len(pairs) == 3  # full batches only
    epoch = [pairs[i] for i in range(len(pairs))]
    seen = np.concatenate([t[1] for t, _ in epoch])
    assert len(set(seen)) == 9 and all(len(v[1]) == 3 and (v[1] >= 100).all() for _, v in epoch)
    np.testing.assert_array_equal(epoch[0][0][0][:, 0], epoch[0][0][1])  # x and y stay paired
    pairs.on_epoch_end()
    assert not np.array_equal(np.concatenate([pairs[i][0][1] for i in range(3)]), seen)
    inputs = {"a": np.arange(5)[:, None], "b": np.arange(5)[:, None] * 2}
    ordered = array_batches()(inputs, np.arange(5), batch_size=2)
    assert len(ordered) == 3 and [len(ordered[i][1]) for i in range(3)] == [2, 2, 1]
    np.testing.assert_array_equal(
        np.concatenate([ordered[i][0]["b"] for i in range(3)])[:, 0], 2 * np.arange(5)
    )


# --------------------------------------------------------------- across backends


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """Write the shared inputs and TensorFlow's models, run the JAX process, load its npz."""
    pytest.importorskip("jax")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("compares TensorFlow with a JAX process")
    directory = str(tmp_path_factory.mktemp("backends"))
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    np.savez(
        os.path.join(directory, "inputs.npz"), images=x[:150].reshape(-1, 8, 8), labels=y[:150]
    )
    backend_run.supernet().save_weights(os.path.join(directory, "supernet.weights.h5"))
    ours = backend_run.fit_models(directory, "tensorflow")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = os.path.join(os.path.dirname(__file__), "backend_run.py")
    done = subprocess.run(
        [sys.executable, script, directory], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = dict(np.load(os.path.join(directory, "jax.npz")))
    return directory, ours, theirs


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_jax_steps_match_tensorflow_steps_from_the_same_weights(jax_run, method):
    directory = jax_run[0]
    net = backend_run.supernet()
    net.load_weights(os.path.join(directory, "supernet.weights.h5"))
    ours = backend_run.compiled_steps(net, method)
    theirs = [jax_run[2][f"{method}/{i}"] for i in range(len(ours))]
    for got, want, variable in zip(theirs, ours, net.weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4, err_msg=variable.path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["graph", "cells"])
def test_an_image_model_saved_on_one_backend_predicts_the_same_on_the_other(jax_run, name):
    directory, ours, theirs = jax_run
    np.testing.assert_allclose(
        theirs[f"tensorflow_{name}"], ours[f"tensorflow_{name}"], rtol=1e-4, atol=1e-5
    )
    from backend_run import predict_saved

    here = predict_saved(directory, "jax")
    np.testing.assert_allclose(here[f"jax_{name}"], theirs[f"jax_{name}"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_table_model_from_jax_takes_strings_through_its_sidecar_on_tensorflow(jax_run):
    directory, _, theirs = jax_run
    from backend_run import predict_saved

    here = predict_saved(directory, "jax")
    assert here["jax_table"].shape == (120, 2)
    np.testing.assert_allclose(here["jax_table"], theirs["jax_table"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_jax_process_never_imported_tensorflow(jax_run):
    # it could not: everything above ran in it without TensorFlow installed, in effect
    assert jax_run[2]["tensorflow_modules"].size == 0
    assert {"jax_graph", "jax_cells", "jax_table", "milenas/0"} <= set(jax_run[2])


@pytest.mark.slow
def test_a_tensorflow_table_model_with_strings_gets_a_clear_error_on_jax(jax_run):
    message = str(jax_run[2]["tensorflow_table/error"])
    assert "only the TensorFlow backend has" in message and "KERAS_BACKEND='jax'" in message


def test_batch_norm_follows_pytorchs_training_formula_on_every_backend(rng):
    from automl.cells.ops import batch_norm

    x = (rng.normal(size=(4, 3, 3, 5)) * 2 + 1).astype("float32")
    layer = batch_norm()
    out = np.array(layer(x, training=True))
    mean, variance, count = x.mean((0, 1, 2)), x.var((0, 1, 2)), 4 * 3 * 3
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(variance + 1e-5), atol=1e-4)
    np.testing.assert_allclose(np.array(layer.moving_mean), 0.1 * mean, atol=1e-5)
    unbiased = variance * count / (count - 1)  # the running variance is unbiased
    np.testing.assert_allclose(np.array(layer.moving_variance), 0.9 + 0.1 * unbiased, atol=1e-5)
