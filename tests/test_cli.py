import json

import numpy as np
import pandas as pd
import pytest

from automl.cli import commands as cli


def test_cli_fit_builtin_then_predict_csv(tmp_path, capsys):
    out = tmp_path / "result.json"
    model = tmp_path / "iris.keras"
    code = cli.main(
        [
            "fit",
            "iris",
            "--max-trials",
            "1",
            "--epochs",
            "3",
            "--directory",
            str(tmp_path / "runs"),
            "--output",
            str(model),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) == {"dataset", "metric", "test_score", "seconds", "trials", "model_path"}
    assert result["metric"] == "accuracy" and result["trials"] == 1
    assert 0 <= result["test_score"] <= 1
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "trial_id" in printed

    from sklearn.datasets import load_iris

    x = load_iris().data[:5]
    np.savez(tmp_path / "x.npz", x=x)
    assert (
        cli.main(
            ["predict", str(model), str(tmp_path / "x.npz"), "--output", str(tmp_path / "p.csv")]
        )
        == 0
    )
    preds = pd.read_csv(tmp_path / "p.csv")["prediction"]
    assert len(preds) == 5 and set(preds) <= {0, 1, 2}


def test_cli_csv_with_target(tmp_path, rng):
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.choice(["x", "y"], size=60)})
    frame["label"] = np.where(frame["a"] > 0, "pos", "neg")
    frame.to_csv(tmp_path / "t.csv", index=False)
    code = cli.main(
        [
            "fit",
            "--csv",
            str(tmp_path / "t.csv"),
            "--target",
            "label",
            "--max-trials",
            "1",
            "--epochs",
            "2",
            "--quiet",
            "--directory",
            str(tmp_path / "runs"),
            "--output",
            str(tmp_path / "t.keras"),
        ]
    )
    assert code == 0
    assert (
        cli.main(
            [
                "predict",
                str(tmp_path / "t.keras"),
                str(tmp_path / "t.csv"),
                "--output",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    assert set(pd.read_csv(tmp_path / "p.csv")["prediction"]) <= {"pos", "neg"}


def test_cli_errors_are_clear(tmp_path, capsys):
    assert cli.main(["fit", "mnist_from_the_internet"]) == 2
    assert "Built-in datasets" in capsys.readouterr().err
    assert cli.main(["fit", "--csv", str(tmp_path / "none.csv")]) == 2
    assert "--target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["nonsense"])


def test_cli_unexpected_errors_and_interrupts_print_one_line(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something broke")

    monkeypatch.setattr(cli, "fit", broken)
    assert cli.main(["fit", "iris"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("automl: error: unexpected RuntimeError: something broke")
    assert "AUTOML_DEBUG=1" in err and "Traceback" not in err
    monkeypatch.setenv("AUTOML_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something broke"):
        cli.main(["fit", "iris"])

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit", interrupted)
    assert cli.main(["fit", "iris"]) == 130
    assert capsys.readouterr().err == "automl: interrupted\n"
