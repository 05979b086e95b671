"""Cell search: a MiLeNAS or DARTS supernet search, then its genotypes trained as trials.

The supernet is searched on the training data (split 50/50 by `run_search`) for
at most `search_fraction` of the time limit. Its candidates are the chosen
genotype and the best genotype of every model size it saw, best search-validation
accuracy first. Each candidate, up to `max_trials`, is then built as a fixed
network of `Cell`s behind the preprocessing and trained as a trial with early
stopping on the validation data, until the time limit. The project folder keeps
the search result (`cell_search.json`) and each trial's weights and summary, so a
resumed `fit` skips the supernet and every trial already trained.
"""

from __future__ import annotations

import contextlib
import time

from automl.cells import backend as cell_backend
from automl.engine.base import Candidate, SearchBackend, SearchContext, rank
from automl.errors import DiskFullError, InputError, TrainingDiverged
from automl.project import layout
from automl.project.files import checksum, read_json, write_json
from automl.search.cost import seconds_to_start
from automl.training.weights import save_weights, search_stopped

# Scaled down from MiLeNAS (8 cells, 16 channels, 50 epochs on a GPU) for small data on a
# CPU, where tracing the DARTS supernet's step alone takes a minute or more.
DEFAULTS = {
    "space": "darts",  # or "nb201" (NAS-Bench-201 cells, much lighter)
    "stages": 3,  # NB201 only: stages of the supernet
    "search_epochs": 10,  # early stopping at model size (6, 0) still applies
    "search_cells": 3,  # supernet cells (DARTS: at least 3) or cells per stage (NB201)
    "search_channels": 8,  # supernet channels
    "cells": 5,  # cells of the final network (more than the supernet)
    "channels": 16,  # channels of the final network
    "alpha_lr": 3e-3,  # MiLeNAS's 3e-4 is for ~20,000 steps; a few hundred need more
    "darts_order": 2,  # strategy="darts": 1 or 2 (first or second order)
    "batch_size": 64,
    "max_epochs": 100,  # trials: most epochs, early stopping on the validation data
    "search_fraction": 0.5,  # share of time_limit the supernet search may use
}
RESULT_FILE = layout.CELL_SEARCH_FILE
WEIGHTS_FILE = layout.WEIGHTS_FILE
SUMMARY_FILE = layout.SUMMARY_FILE


def options(given: dict | None) -> dict:
    """`DEFAULTS` updated by `given`; unknown names are refused."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise InputError(f"Unknown cell_options {unknown}. Known: {sorted(DEFAULTS)}.")
    merged = {**DEFAULTS, **given}
    if merged["space"] not in ("darts", "nb201") or merged["darts_order"] not in (1, 2):
        raise InputError(
            "cell_options: space must be 'darts' or 'nb201' and darts_order 1 or 2. "
            f"Received: space={merged['space']!r}, darts_order={merged['darts_order']!r}."
        )
    if not 0 < merged["search_fraction"] <= 1:
        raise InputError(
            "cell_options['search_fraction'] must be in (0, 1]. "
            f"Received: {merged['search_fraction']!r}."
        )
    return merged


class CellSearch(SearchBackend):
    """Runs a cell strategy (`strategy="milenas"` or `"darts"`) in the project directory."""

    @classmethod
    def check_settings(cls, strategy: str, kind: str, task: str, options_: dict | None) -> dict:
        cell_backend.current()  # a backend the supernet steps run on
        return options(options_)

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.opts = options(context.options)
        order = self.opts["darts_order"]
        self.method = "milenas" if context.strategy == "milenas" else f"darts{order}"
        self.plan: list[dict] = []

    # ------------------------------------------------------------------ files
    def _trial_file(self, index: int, name: str) -> str:
        return self.context.project.file(layout.trial_folder(index), name)

    def _summary(self, index: int) -> dict:
        return read_json(self._trial_file(index, SUMMARY_FILE), {})

    def _candidate(self, index: int, score: float, summary: dict | None = None) -> Candidate:
        from automl.cells.genotype import Genotype

        genotype = Genotype.from_string(self.plan[index]["genotype"])
        opts, n_outputs = self.opts, self.context.head.n_outputs

        def apply(x, prefix: str):
            from automl.cells.search import build_network

            return build_network(
                genotype,
                x,
                n_outputs,
                cells=opts["cells"],
                channels=opts["channels"],
                prefix=prefix,
            )

        return Candidate(str(index), score, genotype, apply, dict(summary or {}))

    # ------------------------------------------------------------------ search
    def search(self, train: tuple, val: tuple) -> None:
        context = self.context
        result = read_json(context.project.file(RESULT_FILE))
        if result is not None and result.get("method") == self.method:
            context.log(f"{self.method}: reusing the supernet search in {context.project.path}")
        else:
            result = self._search_supernet(train)
            write_json(context.project.file(RESULT_FILE), result)
        self.plan = plan_candidates(result)
        count = min(len(self.plan), context.budget.max_trials)
        context.progress.trials = count
        before = [summary for i in range(count) if (summary := self._summary(i))]
        context.progress.start(len(before), [summary.get("score") for summary in before])
        try:
            for index in range(count):
                if self._summary(index):  # trained (or failed) before: never again
                    continue
                if index and context.budget.search_left() <= self._seconds_needed():
                    context.log(
                        f"{self.method}: time limit reached; "
                        f"{len(self.plan) - index} candidates not trained"
                    )
                    break
                context.progress.trial_started(str(index), context.epochs)
                score, line = self._train(index, train, val)
                context.progress.trial_ended(score, line)
        finally:
            context.progress.close()

    def _seconds_needed(self) -> float:
        """Two epochs of a typical trained candidate (0 before any)."""
        return seconds_to_start([self._summary(i) for i in range(len(self.plan))])

    def _search_supernet(self, train: tuple) -> dict:
        from automl.cells.search import run_search

        context, opts = self.context, self.opts
        budget = context.budget
        deadline = None
        if budget.seconds is not None:
            deadline = budget.started + budget.seconds * opts["search_fraction"]
        context.log(f"{self.method}: searching the {opts['space']} cell supernet")
        result = run_search(
            context.preprocessor.normalise_images(train[0]),
            train[1],
            num_classes=context.head.n_outputs,
            method=self.method,
            epochs=opts["search_epochs"],
            batch_size=opts["batch_size"],
            cells=opts["search_cells"],
            channels=opts["search_channels"],
            space=opts["space"],
            stages=opts["stages"],
            seed=context.seed,
            alpha_lr=opts["alpha_lr"],
            deadline=deadline,
            verbose=context.verbose,
        )
        return {"method": self.method, **result.to_dict()}

    def _train(self, index: int, train: tuple, val: tuple) -> tuple[float | None, str]:
        """Train candidate `index` and record it; (its score, or None if it failed; a line)."""
        import keras

        from automl.training.fit import fit_trial, inference_ms

        context, head = self.context, self.context.head
        start = time.time()
        keras.utils.set_random_seed(context.seed * 1000 + index)
        model = context.assemble([self._candidate(index, 0.0)])
        entry = self.plan[index]
        summary = {
            "key": entry["genotype"],
            "params": model.count_params(),
            "search_score": entry["search_score"],
            "model_size": entry["model_size"],
        }
        try:
            scores, best, timing = fit_trial(
                model,
                context.dataset(*train, shuffle=True),
                context.dataset(*val, shuffle=False),
                objective=head.objective,
                direction=head.direction,
                epochs=context.epochs,
                max_epochs=self.opts["max_epochs"],
                deadline=context.budget.search_deadline,
                monitor_loss=True,
                **context.fit_options(f"trial_{index}"),
            )
        except Exception as err:  # noqa: BLE001 - a failed trial is recorded, as for graphs
            reason = (
                str(err) if isinstance(err, TrainingDiverged) else f"{type(err).__name__}: {err}"
            )
            summary.update(status="FAILED", reason=reason)
            write_json(self._trial_file(index, SUMMARY_FILE), summary)
            return (
                None,
                f"trial {index}: {self.method} genotype {entry['genotype']} failed: {reason}",
            )
        path = self._trial_file(index, WEIGHTS_FILE)
        try:
            save_weights(model, path)
        except DiskFullError as err:  # the trial fails, and the search stops until there is room
            summary.update(status="FAILED", reason=str(err))
            # With no room for the summary either, the trial stays unrecorded and a resume
            # trains it again.
            with contextlib.suppress(OSError):
                write_json(self._trial_file(index, SUMMARY_FILE), summary)
            raise search_stopped(err, context.project.path) from None
        summary.update(
            status="COMPLETED",
            score=float(scores[best]),
            epochs=len(scores),
            best_epoch=best + 1,
            seconds=round(time.time() - start, 2),
            **timing,
            weights_sha256=checksum(path),
            inference_ms=inference_ms(model, val[0]),
            finished_at=time.time(),
        )
        write_json(self._trial_file(index, SUMMARY_FILE), summary)
        return float(scores[best]), (
            f"trial {index}: {self.method} genotype {entry['genotype']} -> "
            f"{head.objective}={scores[best]:.4f} ({summary['params']:,} params, "
            f"{summary['epochs']} epochs, {summary['seconds']:.1f} s)"
        )

    # ------------------------------------------------------------------ results
    def candidates(self) -> list[Candidate]:
        found = []
        for index in range(len(self.plan)):
            summary = self._summary(index)
            if summary.get("status") == "COMPLETED":
                found.append(self._candidate(index, summary["score"], summary))
        return rank(found, self.context.head)

    def load_model(self, candidate: Candidate):
        from automl.training.fit import load_checked_weights

        model = self.context.assemble([candidate])
        load_checked_weights(
            model,
            self._trial_file(int(candidate.trial_id), WEIGHTS_FILE),
            candidate.summary.get("weights_sha256"),
        )
        return model

    def mark_failed(self, candidate: Candidate, reason: str) -> None:
        index = int(candidate.trial_id)
        summary = {**self._summary(index), "status": "FAILED", "reason": reason}
        write_json(self._trial_file(index, SUMMARY_FILE), summary)

    def summary_rows(self) -> list[dict]:
        rows = []
        for index, entry in enumerate(self.plan):
            info = self._summary(index)
            rows.append(
                {
                    "trial_id": str(index),
                    "strategy": self.method,
                    "key": entry["genotype"],
                    "params": info.get("params"),
                    "score": info.get("score"),
                    "search_score": entry["search_score"],
                    "epochs": info.get("epochs"),
                    "seconds": info.get("seconds"),
                    "val_loss": info.get("val_loss"),
                    "inference_ms": info.get("inference_ms"),
                    "finished_at": info.get("finished_at"),
                    "parent": None,
                    "status": info.get("status", "NOT_TRAINED"),
                    "reason": info.get("reason"),
                }
            )
        return rows


def plan_candidates(result: dict) -> list[dict]:
    """The candidates of a search: the chosen genotype, then the best of each model size.

    Ordered by search-validation accuracy after the chosen one; each genotype once.
    """
    chosen = result["genotype"]
    by_size = sorted(result["by_size"], key=lambda e: (-e["accuracy"], e["genotype"]))
    search_score = {e["genotype"]: e["accuracy"] for e in by_size}
    for entry in result["history"]:
        search_score.setdefault(entry["genotype"], entry["search_val_accuracy"])
    plan, seen = [], set()
    for genotype, size in [(chosen, None)] + [(e["genotype"], e["model_size"]) for e in by_size]:
        if genotype in seen:
            continue
        seen.add(genotype)
        if size is None:
            size = next(
                (e["model_size"] for e in result["history"] if e["genotype"] == genotype), None
            )
        plan.append(
            {"genotype": genotype, "model_size": size, "search_score": search_score.get(genotype)}
        )
    return plan
