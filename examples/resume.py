"""Resume: a search stopped after 2 trials goes on to 4 without re-running the first 2.

The project folder (`directory` / `project_name`) keeps every finished trial. A
second `fit` on the same data with `overwrite=False` (the default) reuses them
and trains only the new trials: the first rows of `search_summary()` come back
unchanged, seconds included.

Run:
    python examples/resume.py            # trials train to early stopping: a few minutes
    python examples/resume.py --quick    # 2 epochs per trial: about a minute
"""

from __future__ import annotations

import argparse
import os

from sklearn.datasets import load_digits

import automl


def fit(x, y, directory: str, max_trials: int, overwrite: bool, quick: bool):
    """An ImageClassifier fitted on the project `directory`/resume."""
    clf = automl.ImageClassifier(
        max_trials=max_trials,
        epochs=2 if quick else None,
        directory=directory,
        project_name="resume",
        overwrite=overwrite,
        seed=0,
    )
    return clf.fit(x, y)


def summary(clf):
    """`search_summary()` in trial order (it lists the best trial first)."""
    frame = clf.search_summary()[["trial_id", "key", "params", "score", "seconds", "status"]]
    return frame.sort_values("trial_id", key=lambda ids: ids.astype(int))


def main(out: str, quick: bool) -> None:
    """Fit 2 trials from scratch, then 4 on the same project; `quick`: 1,000 images, 2 epochs."""
    x, y = load_digits(return_X_y=True)
    rows = slice(1000 if quick else None)
    x, y, directory = x.reshape(-1, 8, 8)[rows], y[rows], os.path.join(out, "runs")
    first = fit(x, y, directory, 2, overwrite=True, quick=quick)  # from scratch
    before = summary(first)
    print(f"first fit, max_trials=2: {first.seconds_:.1f} s\n{before.to_string(index=False)}")
    second = fit(x, y, directory, 4, overwrite=False, quick=quick)  # resumed
    after = summary(second)
    print(f"second fit, max_trials=4: {second.seconds_:.1f} s\n{after.to_string(index=False)}")

    same = ["key", "seconds"]  # a trial trained again would take other seconds
    old = after.set_index("trial_id").loc[before["trial_id"], same]
    reused = old.values.tolist() == before[same].values.tolist()
    print(f"the first {len(before)} trials were reused unchanged: {reused}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 images, 2 epochs per trial")
    parser.add_argument("--out", default="automl_examples", help="output folder")
    args = parser.parse_args()
    main(args.out, args.quick)
