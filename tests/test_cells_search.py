"""End to end: search on tiny data, build and train the fixed network, export and reload."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from automl.cells.genotype import Genotype
from automl.cells.search import SearchResult, run_search, train_network
from automl.errors import InputError


def _data(samples=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(samples) % classes
    x = rng.normal(size=(samples, 8, 8, 1)) + y[:, None, None, None]
    return x.astype("float32"), y


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _check_exports(model, x, tmp_path):
    expected = model.predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "net.keras")
    _run(f"""
        import numpy as np, keras
        import automl.cells
        model = keras.models.load_model({str(tmp_path / "net.keras")!r})
        np.save({str(tmp_path / "keras.npy")!r}, model.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0))
    """)
    np.testing.assert_allclose(np.load(tmp_path / "keras.npy"), expected, atol=1e-5)
    model.export(str(tmp_path / "saved"), verbose=False)
    _run(f"""
        import sys
        sys.modules["automl"] = None  # serving must not need automl
        import numpy as np, tensorflow as tf
        served = tf.saved_model.load({str(tmp_path / "saved")!r})
        out = served.serve(tf.constant(np.load({str(tmp_path / "x.npy")!r})))
        np.save({str(tmp_path / "saved.npy")!r}, out.numpy())
    """)
    np.testing.assert_allclose(np.load(tmp_path / "saved.npy"), expected, atol=1e-5)


def _check_result(result: SearchResult, epochs: int):
    assert len(result.history) == epochs or result.stopped_early
    entry = result.history[-1]
    assert set(entry) == {
        "epoch",
        "seconds",
        "loss",
        "accuracy",
        "search_val_accuracy",
        "genotype",
        "model_size",
    }
    assert Genotype.from_string(entry["genotype"]).model_size == tuple(entry["model_size"])
    assert result.by_size and all(0 <= e["accuracy"] <= 1 for e in result.by_size)
    assert str(result.genotype) in {e["genotype"] for e in result.by_size}
    json.dumps(result.to_dict())


@pytest.mark.slow  # test_tasks' and test_cell_backend's MiLeNAS searches cover NB201 by default
def test_nb201_search_end_to_end_with_exports(tmp_path, capsys):
    x, y = _data()
    result = run_search(
        x,
        y,
        num_classes=3,
        method="milenas",
        epochs=2,
        batch_size=8,
        cells=1,
        channels=4,
        space="nb201",
        stages=1,
        seed=0,
        verbose=1,
    )
    _check_result(result, 2)
    assert "search-val acc" in capsys.readouterr().out
    model = train_network(
        result.genotype, x, y, num_classes=3, epochs=1, batch_size=8, cells=1, channels=8
    )
    assert model.output_shape == (None, 3)
    _check_exports(model, x[:4], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["milenas", "darts"])
def test_darts_search_end_to_end_with_exports(tmp_path, method):
    x, y = _data(samples=48)
    result = run_search(
        x, y, num_classes=3, method=method, epochs=2, batch_size=8, cells=3, channels=4, seed=0
    )
    _check_result(result, 2)
    assert result.method == ("darts2" if method == "darts" else "milenas")
    assert set(result.genotypes) == {tuple(e["model_size"]) for e in result.by_size}
    model = train_network(
        result.genotype, x, y, num_classes=3, epochs=1, batch_size=8, cells=4, channels=8
    )
    assert [layer.name for layer in model.layers].count("cell_3") == 1
    _check_exports(model, x[:4], tmp_path)


def test_run_search_rejects_bad_input():
    x, y = _data()
    with pytest.raises(InputError, match="method"):
        run_search(x, y, num_classes=3, method="enas")
    with pytest.raises(InputError, match="x.shape"):
        run_search(x[..., 0], y, num_classes=3)
    with pytest.raises(InputError, match="labels"):
        run_search(x, y + 5, num_classes=3)
    with pytest.raises(InputError, match="integer"):
        run_search(x, y.astype("float32"), num_classes=3)
    assert keras.backend.backend() == "tensorflow"
