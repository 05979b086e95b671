"""The command line with text: `--text-dir`, a CSV whose only feature is free text, and
`automl predict` / `automl export` of the text model."""

import json

import numpy as np
import pandas as pd
import pytest
from test_text_tables import reviews, sentences

from automl.cli import commands as cli
from automl.data import datasets

pytestmark = pytest.mark.slow  # five command-line fits

FAST = ["--max-trials", "1", "--epochs", "1", "--time-limit", "2m", "--quiet", "--seed", "0"]


def _write_folder(folder, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    for i, (text, label) in enumerate(zip(sentences(rng, labels), labels)):
        sub = folder / ("pos" if label else "neg")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:03d}.txt").write_text(text)


def test_fit_text_dir_then_predict_a_folder_and_export(tmp_path, capsys):
    _write_folder(tmp_path / "reviews", 100, seed=0)
    model, result = tmp_path / "m.keras", tmp_path / "r.json"
    args = ["fit", "--text-dir", str(tmp_path / "reviews"), "--directory", str(tmp_path / "runs")]
    code = cli.main([*args, *FAST, "--output", str(model), "--json", str(result)])
    assert code == 0, capsys.readouterr().err
    out = json.loads(result.read_text())
    assert out["metric"] == "accuracy" and out["model_path"] == str(model)
    sidecar = json.loads((tmp_path / "m.keras.automl.json").read_text())
    assert sidecar["estimator"] == "TextClassifier"
    assert sidecar["preprocessor"]["kind"] == "text"

    _write_folder(tmp_path / "new", 6, seed=1)
    (tmp_path / "new" / "pos" / "notes.md").write_text("not a text file to read")
    preds = tmp_path / "p.csv"
    capsys.readouterr()
    assert cli.main(["predict", str(model), str(tmp_path / "new"), "--output", str(preds)]) == 0
    frame = pd.read_csv(preds)
    assert list(frame.columns) == ["file", "prediction"] and len(frame) == 6
    assert frame["file"].str.endswith(".txt").all() and set(frame["prediction"]) <= {"pos", "neg"}
    pd.DataFrame({"text": ["a lovely box", None, "broken and awful"]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    capsys.readouterr()
    assert cli.main(["predict", str(model), str(tmp_path / "t.csv"), "--proba"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "p_neg,p_pos" and len(printed) == 4

    assert cli.main(["export", str(model), str(tmp_path / "saved")]) == 0
    import tensorflow as tf

    from automl.export.keras_file import load_model, predict_with

    texts = np.array([["a lovely box"], [""], ["broken and awful"]])
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    expected = predict_with(*load_model(str(model))[:2], None, texts[:, 0])
    np.testing.assert_allclose(serve(input=tf.constant(texts))["output"], expected, atol=1e-5)
    capsys.readouterr()
    assert cli.main(["export", str(model), str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("automl: error: format='tflite'") and "'savedmodel'" in err
    assert not (tmp_path / "m.tflite").exists()
    two = tmp_path / "two.csv"
    pd.DataFrame({"a": ["x"], "b": ["y"]}).to_csv(two, index=False)
    assert cli.main(["predict", str(model), str(two)]) == 2
    assert "one text per row" in capsys.readouterr().err


def test_a_csv_picks_the_text_model_only_for_a_lone_text_column(tmp_path):
    frame, label = reviews(60)
    frame["label"] = label
    frame[["review", "label"]].to_csv(tmp_path / "text.csv", index=False)
    frame.to_csv(tmp_path / "table.csv", index=False)
    frame[["colour", "label"]].to_csv(tmp_path / "colour.csv", index=False)
    text = datasets.load_csv(str(tmp_path / "text.csv"), "label")
    assert (text.kind, text.task) == ("text", "classification")
    assert cli._ESTIMATORS[text.kind, text.task] == "TextClassifier"
    assert isinstance(text.x_train[0], str) and len(text.x_train) == 48
    assert datasets.load_csv(str(tmp_path / "table.csv"), "label").kind == "table"
    assert datasets.load_csv(str(tmp_path / "colour.csv"), "label").kind == "table"
    frame["score"] = np.arange(60) * 0.37
    frame[["review", "score"]].to_csv(tmp_path / "reg.csv", index=False)
    reg = datasets.load_csv(str(tmp_path / "reg.csv"), "score")
    assert cli._ESTIMATORS[reg.kind, reg.task] == "TextRegressor"


def test_a_csv_with_a_lone_text_column_fits_a_text_classifier(tmp_path, capsys):
    frame, label = reviews(80)
    frame["review"] = frame["review"].where(np.arange(80) % 10 > 0)  # some texts missing
    pd.DataFrame({"review": frame["review"], "label": label}).to_csv(
        tmp_path / "r.csv", index=False
    )
    model = tmp_path / "r.keras"
    args = ["fit", "--csv", str(tmp_path / "r.csv"), "--target", "label", *FAST]
    assert cli.main([*args, "--directory", str(tmp_path / "runs"), "--output", str(model)]) == 0
    sidecar = json.loads((tmp_path / "r.keras.automl.json").read_text())
    assert sidecar["estimator"] == "TextClassifier"


def test_a_csv_with_text_beside_other_columns_fits_a_table_model(tmp_path, capsys):
    frame, label = reviews(100)
    frame.assign(label=label).to_csv(tmp_path / "t.csv", index=False)
    frame[:5].to_csv(tmp_path / "new.csv", index=False)
    model = tmp_path / "t.keras"
    args = ["fit", "--csv", str(tmp_path / "t.csv"), "--target", "label", *FAST]
    assert cli.main([*args, "--directory", str(tmp_path / "runs"), "--output", str(model)]) == 0
    sidecar = json.loads((tmp_path / "t.keras.automl.json").read_text())
    assert sidecar["estimator"] == "StructuredDataClassifier"
    kinds = [c["kind"] for c in sidecar["preprocessor"]["columns"]]
    assert kinds == ["text", "numeric", "categorical"]
    capsys.readouterr()
    assert cli.main(["predict", str(model), str(tmp_path / "new.csv")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == "prediction" and set(printed[1:]) <= {"pos", "neg"} and len(printed) == 6


def test_text_dir_errors_are_one_line(tmp_path, capsys):
    _write_folder(tmp_path / "reviews", 10, seed=0)
    assert cli.main(["fit", "--text-dir", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["fit", "--text-dir", str(tmp_path / "reviews"), "--task", "regression"]) == 2
    assert "trains a classifier" in capsys.readouterr().err
    assert cli.main(["fit", "iris", "--text-dir", str(tmp_path / "reviews")]) == 2
    assert "--text-dir DIR" in capsys.readouterr().err
