"""Data files that cannot be used are refused before training, with the file named, and the
progress display tells an interrupted trial and a resumed search's best score right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import automl
from automl.cli import commands as cli
from automl.errors import InputError
from automl.reporting.progress import SearchProgress, failure_line

pytest.importorskip("tensorflow")


def _image_folder(root, per_class: int = 3):
    """root/cat and root/dog with `per_class` 8x8 RGB PNGs each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _no_search(monkeypatch):
    """Make any search start fail the test: the data must be refused before it."""
    from automl.engine.graph_search import GraphSearch

    def search(*args, **kwargs):
        raise AssertionError("the search started before the data was checked")

    monkeypatch.setattr(GraphSearch, "search", search)


def _fit_folder(path, tmp_path):
    clf = automl.ImageClassifier(
        max_trials=1, epochs=1, verbose=0, directory=tmp_path / "runs", project_name="p"
    )
    return clf.fit(str(path))


def test_a_corrupt_png_is_refused_with_its_name(tmp_path, monkeypatch):
    folder = _image_folder(tmp_path / "photos")
    bad = folder / "dog" / "1.png"
    bad.write_bytes(bad.read_bytes()[:40])  # cut in the middle of its data
    _no_search(monkeypatch)
    with pytest.raises(InputError, match=r"dog/1\.png") as caught:
        _fit_folder(folder, tmp_path)
    assert "Invalid PNG" in str(caught.value)
    assert "function_node" not in str(caught.value) and "[Op:" not in str(caught.value)


def test_a_text_file_named_jpg_is_refused_with_its_name(tmp_path, monkeypatch):
    folder = _image_folder(tmp_path / "photos")
    (folder / "cat" / "notes.jpg").write_text("not an image\n")
    (folder / "dog" / "x.png").write_text("nor this\n")
    _no_search(monkeypatch)
    with pytest.raises(InputError, match=r"cat/notes\.jpg.*Unknown image file format") as caught:
        _fit_folder(folder, tmp_path)
    assert "1 more unreadable file" in str(caught.value)
    assert not (tmp_path / "runs").exists()  # refused before the project was opened


def test_a_bad_first_image_is_named_too(tmp_path):
    from automl.data.streaming import ImageDirectory

    folder = _image_folder(tmp_path / "photos")
    (folder / "cat" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match=r"cat/0\.png"):
        ImageDirectory(folder)


def test_predict_names_a_bad_image_too(tmp_path):
    from automl.data.streaming import ImageDirectory

    folder = _image_folder(tmp_path / "photos")
    (folder / "dog" / "z.gif").write_bytes(b"GIF89a garbage")
    stream = ImageDirectory(folder, labels=False, image_shape=[8, 8, 3])
    with pytest.raises(InputError, match=r"dog/z\.gif"):
        list(stream.batches())


def test_the_cli_prints_one_line_for_a_text_file_named_jpg(tmp_path, capsys, monkeypatch):
    folder = _image_folder(tmp_path / "photos")
    (folder / "dog" / "2.jpg").write_text("hello\n")
    _no_search(monkeypatch)
    code = cli.main(
        [
            "fit",
            "--image-dir",
            str(folder),
            "--max-trials",
            "1",
            "--epochs",
            "1",
            "--quiet",
            "--directory",
            str(tmp_path / "runs"),
            "--output",
            str(tmp_path / "m.keras"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("automl: error: Cannot read the image file")
    assert "dog/2.jpg" in err[0] and "bug in automl" not in err[0]


def _empty_target_csv(path):
    frame = pd.DataFrame({"a": np.arange(8.0), "b": list("xyxyxyxy"), "y": [np.nan] * 8})
    frame.to_csv(path, index=False)
    return path


def test_a_csv_with_an_empty_target_column_says_so(tmp_path, monkeypatch):
    csv = _empty_target_csv(tmp_path / "t.csv")
    _no_search(monkeypatch)
    clf = automl.StructuredDataClassifier(
        max_trials=1, epochs=1, verbose=0, directory=tmp_path / "runs"
    )
    with pytest.raises(InputError, match=r"Column 'y' has no values: it is empty in all 8 rows"):
        clf.fit(str(csv), y="y")


def test_the_cli_says_the_target_column_is_empty(tmp_path, capsys):
    csv = _empty_target_csv(tmp_path / "t.csv")
    args = ["fit", "--csv", str(csv), "--target", "y", "--quiet", "--directory", str(tmp_path)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "Column 'y' has no values" in err and "empty file" not in err


def test_a_ctrl_c_trial_is_shown_as_interrupted(capsys):
    progress = SearchProgress(2, trials=3)
    progress.start()
    progress.trial_started("1", None)
    progress.trial_failed("1", KeyboardInterrupt())
    out = capsys.readouterr().out
    assert "trial 1 interrupted (Ctrl-C); run the same fit again to resume" in out
    assert "failed" not in out
    assert progress.done == 0  # not counted: the resumed search runs it again


def test_a_failure_without_a_message_names_its_type():
    assert failure_line("4", RuntimeError()) == "trial 4 failed: RuntimeError"
    assert failure_line("4", ValueError("bad shape")) == "trial 4 failed: bad shape"


@pytest.mark.parametrize("direction, best", [("max", 0.9), ("min", 0.5)])
def test_a_resumed_search_shows_the_best_score_of_every_trial(capsys, direction, best):
    progress = SearchProgress(1, trials=5, objective="val_score", direction=direction)
    progress.start(done=3, scores=[0.5, 0.9, None])
    assert progress.best == best
    progress.trial_ended(0.7, "trial 4: val_score=0.7000")
    assert progress.best == best and progress.done == 4
    assert f"best val_score={best:.4f}" in capsys.readouterr().out
