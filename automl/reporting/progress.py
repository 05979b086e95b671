"""What a running search shows: tqdm progress bars in terminals and notebooks.

`verbose` follows Keras: 0 is silent; 1 shows one bar for the search (trials done
of those planned, time used of the limit, best score so far, and the running
trial's epoch with its latest validation scores) and writes one line per trial
above it; 2 writes one line per trial and one per epoch, without a bar.

The bar is one line written to standard output, so a notebook shows it as plain
output (not as error text) and a terminal redraws it in place. When standard
output is neither a terminal nor a notebook (a pipe, a log file), `verbose=1`
writes one line per trial with the search's progress instead of a bar.
"""

from __future__ import annotations

import math
import os
import sys
import time


def _bar(**kwargs):
    import shutil

    from tqdm.std import tqdm

    # fit the line to a terminal's width; where the width is unknown (a notebook, a
    # terminal that reports 0 columns) the line is not cut
    sized = shutil.get_terminal_size((0, 0)).columns > 0
    return tqdm(file=sys.stdout, dynamic_ncols=sized, mininterval=0.5, **kwargs)


def interactive() -> bool:
    """Whether standard output redraws a bar in place: a terminal or a Jupyter kernel."""
    out = sys.stdout
    if type(out).__module__.startswith("ipykernel"):
        return True
    try:  # a terminal that reports no size (some pseudo-terminals) hides tqdm's bar
        return bool(out.isatty()) and os.get_terminal_size(out.fileno()).lines > 0
    except (AttributeError, ValueError, OSError):
        return False


def failure_line(trial_id: str, err: BaseException) -> str:
    """The line of a trial that raised `err`: interrupted for Ctrl-C, else failed, with the
    reason (the exception's type where its message is empty)."""
    if isinstance(err, KeyboardInterrupt):
        return f"trial {trial_id} interrupted (Ctrl-C); run the same fit again to resume"
    return f"trial {trial_id} failed: {str(err).strip() or type(err).__name__}"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


class SearchProgress:
    """The progress display of one search.

    Args:
        verbose: 0, 1 or 2 (see the module's docstring).
        trials: trials planned.
        seconds: the time limit in seconds, or None.
        objective: the score's name, e.g. "val_accuracy".
        direction: "max" or "min".
        started: `time.time()` when the search began.
    """

    def __init__(
        self,
        verbose: int,
        trials: int | None,
        seconds: float | None = None,
        objective: str = "score",
        direction: str = "max",
        started: float | None = None,
    ):
        self.verbose = int(verbose or 0)
        self.trials = trials
        self.seconds = seconds
        self.objective = objective
        self.direction = direction
        self.started = started or time.time()
        self.best: float | None = None
        self.done = 0
        self._search = None
        self._trial = ""
        self._epochs: int | None = None
        self._epoch = ""

    # ------------------------------------------------------------------ lines
    def write(self, line: str) -> None:
        """One line of text (verbose >= 1), above the bars when they are shown."""
        if not self.verbose:
            return
        if self._search is not None:
            from tqdm.std import tqdm

            tqdm.write(f"[automl] {line}", file=sys.stdout)
        else:
            print(f"[automl] {line}", flush=True)

    def _status(self) -> str:
        used = _clock(time.time() - self.started)
        limit = f"/{_clock(self.seconds)}" if self.seconds else ""
        best = f"best {self.objective}={self.best:.4f}, " if self.best is not None else ""
        return f"{best}{used}{limit}{self._epoch}"

    def _show(self) -> None:
        if self._search is not None:
            self._search.set_description_str(self._status())

    # ------------------------------------------------------------------ search
    def start(self, done: int = 0, scores=()) -> None:
        """The search begins, with `done` trials finished before (a resumed search) and
        `scores` their scores (as the objective reports them), so the best shown is the
        best of the whole search."""
        self.done = done
        for score in scores:
            self._record(score)
        if self.verbose == 1 and interactive():
            self._search = _bar(
                total=self.trials,
                initial=done,
                unit="trial",
                bar_format="search: {n_fmt}/{total_fmt} trials |{bar:12}| {desc}",
            )
            self._show()

    def trial_started(self, trial_id: str, epochs: int | None) -> None:
        """A trial begins; `epochs` is its fixed epoch count, or None (early stopping)."""
        self._trial, self._epochs = trial_id, epochs
        self._epoch = f" | trial {trial_id} starting"
        self._show()

    def epoch_ended(self, epoch: int, logs: dict | None) -> None:
        """Epoch `epoch` (0-based) of the running trial ended with these Keras logs."""
        logs = logs or {}
        shown = {k: float(v) for k, v in logs.items() if k in ("loss", "val_loss", self.objective)}
        text = ", ".join(f"{k}={v:.4f}" for k, v in shown.items())
        of = f"/{self._epochs}" if self._epochs else ""
        self._epoch = f" | trial {self._trial} epoch {epoch + 1}{of}: {text}"
        self._show()
        if self._search is None and self.verbose == 2:
            print(f"[automl] trial {self._trial} epoch {epoch + 1}{of}: {text}", flush=True)

    def _record(self, score: float | None) -> None:
        """Keep `score` as the best when it beats it."""
        if score is None or not math.isfinite(float(score)):
            return
        score = float(score)
        better = self.best is None or (
            score > self.best if self.direction == "max" else score < self.best
        )
        if better:
            self.best = score

    def trial_ended(self, score: float | None, line: str) -> None:
        """The running trial ended (score None: it failed); `line` describes it."""
        self._epoch = ""
        self._record(score)
        self.done += 1
        if self._search is None and self.verbose:  # no bar: the line carries the progress
            total = f"/{self.trials}" if self.trials else ""
            line += f" | {self.done}{total} trials, {self._status()}"
        self.write(line)
        if self._search is not None:
            self._search.update(1)
        self._show()

    def trial_failed(self, trial_id: str, err: BaseException) -> None:
        """The running trial raised `err`: a failed trial, or an interrupted one (Ctrl-C),
        which is not counted as done (a resumed search runs it again)."""
        if isinstance(err, KeyboardInterrupt):
            self._epoch = ""
            self.write(failure_line(trial_id, err))
            self._show()
            return
        self.trial_ended(None, failure_line(trial_id, err))

    def close(self) -> None:
        """The search ended: close the bar."""
        if self._search is not None:
            self._show()
            self._search.close()
        self._search = None

    def callback(self):
        """A Keras callback reporting each epoch of the running trial to this display."""
        import keras

        progress = self

        class EpochProgress(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                progress.epoch_ended(epoch, logs)

        return EpochProgress()
