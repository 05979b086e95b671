"""What a fitted estimator shows of its search: the summary table, plots, an HTML
summary, and the best single trial within a size or latency limit.

`SearchResults` is a mixin of the estimators; it reads the fitted attributes
`backend_` (the search backend and its trials), `head_`, `ensemble_trial_ids_`,
`best_architecture_`, `model_`, `calibration_`, `seconds_` and `strategy`, and
calls the estimator's `_check_fitted`.
"""

from __future__ import annotations

import numpy as np

from automl.errors import InputError


class SearchResults:
    """The views of a finished search (mixed into the estimators)."""

    def _best_within(self, max_params, max_latency_ms):
        """The model of the best finished trial within a size and latency limit."""
        rows = [r for r in self.backend_.summary_rows() if r.get("score") is not None]
        fits = [
            r
            for r in rows
            if (max_params is None or (r.get("params") or 0) <= max_params)
            and (max_latency_ms is None or (r.get("inference_ms") or 0) <= max_latency_ms)
        ]
        if not fits:
            sizes = ", ".join(
                f"trial {r['trial_id']}: {r.get('params')} params, {r.get('inference_ms')} ms"
                for r in rows[:5]
            )
            raise InputError(
                f"No finished trial has at most max_params={max_params} parameters and "
                f"max_latency_ms={max_latency_ms} ms per sample ({sizes}). Raise the limits."
            )
        best = min(fits, key=lambda r: -self.head_.sign * float(r["score"]))
        (candidate,) = [c for c in self.backend_.candidates() if c.trial_id == best["trial_id"]]
        return self.backend_.load_model(candidate)

    def search_summary(self):
        """One row per trial (for cell strategies, per candidate genotype), best first.

        Columns: trial_id; score (the objective, e.g. validation accuracy); val_loss;
        ensemble (whether the trial is a member of the exported model); params;
        inference_ms (milliseconds per sample of the trial's model, on a batch of up
        to 256); seconds and epochs of its training; elapsed (seconds from the
        search's start to the trial's end); parent (the trial a morphism child grew
        from) and morphism (the change that made it); status and reason (why it
        failed); strategy; key (the architecture's canonical string); search_score
        (cell strategies: the supernet's search-validation accuracy). Trials without
        a score come last.
        """
        import pandas as pd

        from automl.engine.base import SUMMARY_COLUMNS

        self._check_fitted()
        frame = pd.DataFrame(self.backend_.summary_rows(), columns=SUMMARY_COLUMNS)
        frame.insert(2, "ensemble", frame["trial_id"].isin(self.ensemble_trial_ids_))
        finished = pd.to_numeric(frame.pop("finished_at"), errors="coerce")
        start = (finished - pd.to_numeric(frame["seconds"], errors="coerce")).min()
        frame.insert(8, "elapsed", (finished - start).round(2))
        order = (-self.head_.sign * pd.to_numeric(frame["score"], errors="coerce")).fillna(np.inf)
        frame = frame.iloc[np.argsort(order.to_numpy(), kind="stable")]
        return frame.reset_index(drop=True)

    def plot_search(self):
        """A matplotlib figure: each trial's score and the best so far against time, and
        parameters against score (ensemble members highlighted)."""
        from automl.reporting.plots import plot_search

        return plot_search(
            self.search_summary(), direction=self.head_.direction, objective=self.head_.objective
        )

    def plot_architecture(self):
        """A matplotlib figure of the best architecture (its graph, or its cells)."""
        from automl.reporting.plots import plot_architecture

        self._check_fitted()
        return plot_architecture(self.best_architecture_)

    def _validation_rows(self) -> list[tuple[str, str]]:
        """The summary's rows on the ensemble's validation score and calibration, measured
        before the refit (none when the members were chosen without validation predictions)."""
        report = getattr(self, "calibration_", None)
        if not report:
            return []
        rows = [
            (
                f"ensemble validation {report['objective']}",
                f"{report['ensemble_score']:.4f} "
                f"(best single trial {report['best_single_score']:.4f})",
            )
        ]
        if report.get("ece_before") is not None:
            scaled = report["temperature"] != 1.0
            how = f"temperature {report['temperature']:.3f}" if scaled else "not rescaled"
            rows.append(
                (
                    "calibration error (ECE)",
                    f"{report['ece_before']:.4f} -> {report['ece_after']:.4f} ({how})",
                )
            )
        return rows

    def _repr_html_(self) -> str:
        """A short HTML summary for notebooks: settings, or the fitted result."""
        import html

        name = type(self).__name__
        if not hasattr(self, "model_"):
            return f"<pre>{html.escape(repr(self))}</pre>"
        summary = self.search_summary()
        done = int(summary["score"].notna().sum())
        best = summary.iloc[0]
        rows = [
            ("strategy", self.strategy),
            ("trials finished", f"{done} of {len(summary)}"),
            (f"best {self.head_.objective}", f"{best['score']:.4f} (trial {best['trial_id']})"),
            (
                "exported model",
                f"{len(self.ensemble_trial_ids_)} trial(s), "
                f"{self.model_.count_params():,} parameters",
            ),
            *self._validation_rows(),
            ("search time", f"{self.seconds_:.1f} s"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return f"<b>{html.escape(name)}</b> (fitted)<table>{body}</table>"
