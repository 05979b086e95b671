"""keras-tuner `Oracle` adapter: drives any `Strategy` over any `SearchSpace`.

The oracle only proposes and records. Each trial's architecture travels as a JSON
string in the trial's hyperparameter values, so keras-tuner's own trial files are
the whole search state: reopening the directory with `overwrite=False` rebuilds
everything, and trials that were running when the process died go back on the
queue. Proposals draw from `np.random.default_rng([seed, trial_number])`, so the
same seed proposes the same architectures. Strategies get the architectures of
running and failed trials as `pending`, so they propose neither again.

keras-tuner stops a search after `max_consecutive_failed_trials` failed trials in a
row; the oracle reports that as a `SearchError` naming the last failure, raised once
the failed trial is recorded. A finished trial whose weights turn out damaged is
marked FAILED afterwards (`mark_failed`). The oracle writes its files atomically
and refuses damaged ones by name. After an out-of-memory failure the space's
model-size cap drops below the failed model's size, and stays there on resume.

Served to workers (`automl.engine.distributed`), the oracle also hears heartbeats
(an `update_trial` without metrics): `reap_lost` puts a trial whose worker has been
silent for `worker_timeout` seconds back on the queue, and a worker that asks while
every trial is given out but others still run is told to wait (IDLE), so a lost
trial always finds a worker.
"""

from __future__ import annotations

import os
import time

import numpy as np

from automl.engine import keras_tuner_api as kt
from automl.engine.keras_tuner_api import Trial, TrialStatus
from automl.engine.summaries import last_line, trial_line, trial_order
from automl.errors import SearchError
from automl.project import layout
from automl.project.files import read_json, write_json
from automl.search import cost
from automl.search.base import Observation, SearchSpace, Strategy

ARCH = "architecture"
PARENT = "parent_trial"


class StrategyOracle(kt.Oracle):
    """Asks a strategy for each new trial.

    Args:
        strategy: the `Strategy` that proposes architectures.
        space: the `SearchSpace` the architectures live in.
        objective: a `keras_tuner.Objective` (name and direction of the score).
        max_trials: number of trials in all (finished ones from a resumed search count).
        seed: seed of the proposals.
        time_limit: seconds after `start_clock()` past which no new trial starts (or
            pass `deadline` to `start_clock`).
        max_consecutive_failed_trials: failed trials in a row that stop the search.
        final_members: trials the final model will combine (their build time is kept free).
        final_refit: whether the final model's members are refit (the best one's refit
            time is kept free too).
        trial_share: the most of the search's time one trial may train for, as a
            fraction (None: no limit); a short search then still runs several trials.
        converge_epochs: epochs a trial that starts from scratch gets time for, past
            its share (the tuner's), and that must fit in the time left for one to
            start once some trial has finished (0: two epochs, as for any trial).
    """

    def __init__(
        self,
        strategy: Strategy,
        space: SearchSpace,
        objective,
        max_trials: int,
        seed: int = 0,
        time_limit: float | None = None,
        max_consecutive_failed_trials: int = 3,
        final_members: int = 1,
        trial_share: float | None = None,
        final_refit: bool = False,
        converge_epochs: int = 0,
    ):
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            seed=seed + 1,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.strategy = strategy
        self.space = space
        self.search_seed = seed
        self.time_limit = time_limit
        self.final_members = final_members
        self.final_refit = final_refit
        self.trial_share = trial_share
        self.converge_epochs = converge_epochs
        self.deadline: float | None = None
        self.search_seconds: float | None = None  # the search's time, from start_clock
        self.verbose = 0  # automl prints its own progress
        self._last_failure: str | None = None
        self.size_cap: int | None = None  # lowered after out-of-memory
        self.worker_timeout: float | None = None  # set when served to workers
        self.failure: SearchError | None = None  # why a served search stopped
        self._heard: dict[str, float] = {}  # trial id -> when its worker was last heard

    def start_clock(self, deadline: float | None = None) -> None:
        """Start the time limit: `deadline` (a `time.time()` value) or `time_limit` from now."""
        if deadline is not None:
            self.deadline = deadline
        else:
            self.deadline = time.time() + self.time_limit if self.time_limit else None
        self.search_seconds = None if self.deadline is None else self.deadline - time.time()

    def time_left(self) -> float:
        """Seconds before the time limit (inf without one or before `start_clock`)."""
        return float("inf") if self.deadline is None else self.deadline - time.time()

    def _sign(self) -> float:
        return -1.0 if self.objective.direction == "min" else 1.0

    def observations(self) -> list[Observation]:
        """Finished trials in trial order, with scores turned higher-is-better and their
        measured seconds per epoch (after the first, which includes tracing)."""
        out = []
        for trial_id in sorted(self.trials, key=trial_order):
            trial = self.trials[trial_id]
            if trial.status == TrialStatus.COMPLETED and trial.score is not None:
                arch = self.space.loads(trial.hyperparameters.values[ARCH])
                summary = self.trial_summary(trial_id)
                seconds = cost.epoch_costs(summary)[1] if summary.get("seconds") else None
                out.append(
                    Observation(arch, self._sign() * float(trial.score), trial_id, seconds or None)
                )
        return out

    def pending(self) -> list:
        """Architectures not to propose again: those of running and of failed trials."""
        failed = [t for t in self.trials.values() if t.status == TrialStatus.FAILED]
        trials = [
            *self.ongoing_trials.values(),
            *sorted(failed, key=lambda t: trial_order(t.trial_id)),
        ]
        return [self.space.loads(t.hyperparameters.values[ARCH]) for t in trials]

    def finished_summaries(self) -> list[dict]:
        """The summaries the tuner wrote of the COMPLETED trials (score, curve, times)."""
        return [
            self.trial_summary(t.trial_id)
            for t in self.trials.values()
            if t.status == TrialStatus.COMPLETED
        ]

    def seconds_needed(self, scale: float = 1.0, epochs: int = 2) -> float:
        """Seconds a new trial needs for `epochs` epochs, plus building the final model, from
        the finished trials (0 before any); `scale`: the trial's cost relative to the median."""
        summaries = self.finished_summaries()
        return scale * cost.seconds_to_start(summaries, epochs) + self._final_seconds(summaries)

    def relative_cost(self, arch, history: list[Observation]) -> float:
        """`arch`'s predicted seconds per epoch relative to the median finished trial's
        (`automl.search.cost.relative_cost`)."""
        return cost.relative_cost(self.space, arch, history)

    def trial_deadline(self) -> float | None:
        """When the running trial stops: the deadline less the final model's build time."""
        if self.deadline is None:
            return None
        return self.deadline - self._final_seconds(self.finished_summaries())

    def trial_budget(self) -> float | None:
        """Seconds one trial may train: `trial_share` of the search's time (None: no limit)."""
        if self.search_seconds is None or not self.trial_share:
            return None
        return self.trial_share * self.search_seconds

    def _final_seconds(self, summaries: list[dict]) -> float:
        """Seconds building the final model from the best `final_members` trials will take,
        and refitting the best one with `final_refit`."""
        return cost.final_model_seconds(
            summaries, self.final_members, self._sign(), self.final_refit
        )

    def lower_size_cap(self, params: int) -> None:
        """Propose no model of `params` / 2 parameters or more from now on (out of memory)."""
        self.size_cap = min(self.size_cap or params, max(int(params) // 2, 1))
        self._apply_size_cap()

    def _apply_size_cap(self) -> None:
        if self.size_cap:
            self.space.max_model_size = min(self.space.max_model_size, self.size_cap)

    def mark_failed(self, trial_id: str, message: str) -> None:
        """Record a finished trial as FAILED (its files turned out damaged)."""
        trial = self.trials[trial_id]
        trial.status = TrialStatus.FAILED
        trial.message = message
        self.save_trial(trial)
        self.save()

    def populate_space(self, trial_id: str) -> dict:
        """The next trial's values: the strategy's architecture (JSON) and its parent's id.

        STOPPED once the time left would not cover two epochs of a typical trial, or of
        the proposed one by its predicted cost (`relative_cost`), or `converge_epochs`
        of a proposal that starts from scratch, when some trial has finished (so a time
        limit always gives a model). The strategy gets the finished
        trials, `pending()`, and a generator seeded by the search seed and the trial number.
        """
        history = self.observations()
        if history and self.time_left() <= self.seconds_needed():
            return {"status": TrialStatus.STOPPED}  # (the first model always trains)
        pending = self.pending()
        rng = np.random.default_rng([self.search_seed, len(self.trials)])
        proposal = self.strategy.propose(self.space, history, rng, pending)
        if history and self.deadline is not None:
            scale = self.relative_cost(proposal.arch, history)
            fresh = proposal.parent is None and self.converge_epochs > 2
            epochs = self.converge_epochs if fresh else 2  # from scratch: time to converge
            if (scale > 1.0 or fresh) and self.time_left() <= self.seconds_needed(scale, epochs):
                return {"status": TrialStatus.STOPPED}
        parent = proposal.parent.trial_id if proposal.parent is not None else ""
        values = {
            ARCH: self.space.dumps(proposal.arch),
            PARENT: parent,
            "strategy": self.strategy.name,
        }
        if self.worker_timeout and self.deadline is not None:  # a worker's clock may differ
            values["seconds_left"] = float(self.trial_deadline() - time.time())
            if (budget := self.trial_budget()) is not None:
                values["trial_budget"] = budget
        return {"status": TrialStatus.RUNNING, "values": values}

    # ------------------------------------------------------------------ workers
    @kt.synchronized
    def create_trial(self, tuner_id: str):
        """The next trial for `tuner_id`; IDLE while every trial is given out but some are
        still running (one may come back), STOPPED after a served search failed."""
        self.reap_lost()
        waiting = (
            tuner_id not in self.ongoing_trials
            and not self.retry_queue
            and self.ongoing_trials
            and self.max_trials
            and len(self.trials) >= self.max_trials
        )
        if self.failure is not None or waiting:
            status = "STOPPED" if self.failure is not None else "IDLE"
            if status == "STOPPED":
                self.tuner_ids.discard(tuner_id)
            return Trial(self.get_space(), status=status)
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self._heard[trial.trial_id] = time.time()
        return trial

    @kt.synchronized
    def update_trial(self, trial_id: str, metrics, step=0):
        """Record a trial's metrics; without metrics, a heartbeat from its worker."""
        trial = self.trials[trial_id]  # (an unknown id raises; the lock is released)
        self._heard[trial_id] = time.time()
        if not metrics or trial.status == TrialStatus.COMPLETED:
            return trial  # a heartbeat, or a late report of a trial that was run again
        return super().update_trial(trial_id, dict(metrics), step=step)

    @kt.synchronized
    def reap_lost(self) -> list[tuple[str, str]]:
        """Put back on the queue the trials whose worker has been silent for
        `worker_timeout` seconds; their (worker, trial id) pairs."""
        if not self.worker_timeout:
            return []
        now, lost = time.time(), []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            if now - self._heard.get(trial.trial_id, now) > self.worker_timeout:
                del self.ongoing_trials[tuner_id]
                self.tuner_ids.discard(tuner_id)
                self.retry_queue.append(trial.trial_id)
                lost.append((tuner_id, trial.trial_id))
        if lost:
            self.save()
        return lost

    @kt.synchronized
    def search_ended(self) -> bool:
        """Whether a served search is over: it failed, or nothing runs and no trial may start
        (all trials done, or too little time left; a trial put back then runs on resume)."""
        if self.failure is not None:
            return True
        if self.ongoing_trials:
            return False
        if self.max_trials and len(self.trials) >= self.max_trials and not self.retry_queue:
            return True
        if self.time_left() <= 0:  # (also when no worker came)
            return True
        finished = any(
            t.status == TrialStatus.COMPLETED and t.score is not None for t in self.trials.values()
        )
        return finished and self.time_left() <= self.seconds_needed()

    def describe_end(self, trial_id: str) -> tuple[float | None, str]:
        """(score or None, a line) for a trial a worker ended."""
        trial = self.trials[trial_id]
        summary = self.trial_summary(trial_id)
        if trial.status != TrialStatus.COMPLETED or trial.score is None:
            return None, f"trial {trial_id} failed: {last_line(trial.message) or 'no message'}"
        score = float(trial.score)
        return score, trial_line(trial_id, self.objective.name, score, summary, worker=True)

    @kt.synchronized
    def end_trial(self, trial, *args, **kwargs) -> None:
        """Record a finished trial; raise `SearchError` if too many failed in a row.

        Served to workers, the error is kept in `failure` instead (the chief raises it),
        a trial already completed is not recorded twice, and a failed trial's message
        comes from the file its worker left.
        """
        known = self.trials[trial.trial_id]
        if known is not trial and known.status == TrialStatus.COMPLETED:
            return  # a worker thought lost finished after all: its rerun already counted
        if trial.message is None and trial.status != TrialStatus.COMPLETED:
            path = os.path.join(self.trial_dir(trial.trial_id), layout.MESSAGE_FILE)
            trial.message = read_json(path, {}).get("message")
        if trial.trial_id in self.retry_queue:  # it ended after all: do not run it again
            self.retry_queue.remove(trial.trial_id)
        self._last_failure = None
        super().end_trial(trial, *args, **kwargs)
        self.save()  # keras-tuner saves before it drops the trial from the running ones
        if self._last_failure is not None:
            error = SearchError(
                f"{self.max_consecutive_failed_trials} trials in a row failed, so the search "
                f"stopped. The last one failed with: {self._last_failure}. Each trial's "
                f"message is in its {layout.TRIAL_FILE} under {self.project_dir}."
            )
            if not self.worker_timeout:
                raise error
            self.failure = error

    def check_consecutive_failures(self) -> None:
        """Note (not raise) a run of failed trials at the end, so the trial is saved first.

        Only the trailing run counts: failures before a completed trial are forgiven.
        """
        failed = []
        for trial_id in reversed(self.end_order):
            if self.trials[trial_id].status != TrialStatus.FAILED:
                break
            failed.append(trial_id)
        limit = self.max_consecutive_failed_trials
        if failed and limit and len(failed) >= limit:
            self._last_failure = last_line(self.trials[failed[0]].message) or "no message"

    # ------------------------------------------------------------------ files
    def get_state(self):
        return {**super().get_state(), "size_cap": self.size_cap}

    def set_state(self, state):
        super().set_state(state)
        self.size_cap = state.get("size_cap")
        self._apply_size_cap()

    def save(self):
        write_json(self.oracle_file(), self.get_state())

    def save_trial(self, trial):
        write_json(
            os.path.join(self.trial_dir(trial.trial_id), layout.TRIAL_FILE), trial.get_state()
        )

    def trial_summary(self, trial_id: str) -> dict:
        """What the tuner recorded of a trained trial ({} before it finished, or if it failed)."""
        return read_json(os.path.join(self.trial_dir(trial_id), layout.SUMMARY_FILE), {})

    def reload(self):
        """Reload the search; a damaged state file raises `InputError` naming it."""
        for path in [
            self.oracle_file(),
            *layout.trial_files(self.project_dir, layout.TRIAL_FILE),
        ]:
            read_json(path)
        super().reload()
        # keras-tuner retries the trials oracle.json lists as running; a kill between a new
        # trial's file and oracle.json leaves one RUNNING that it does not list: retry it too.
        for trial_id in sorted(self.trials, key=trial_order):
            running = self.trials[trial_id].status == TrialStatus.RUNNING
            if running and trial_id not in self.retry_queue:
                self.retry_queue.append(trial_id)
        self.verbose = 0
