"""Graph search: a strategy proposes architecture graphs, keras-tuner runs them as trials.

A graph strategy (those of `automl.engine.registry` run by `GraphSearch`) proposes
through `StrategyOracle`; `GraphTuner` builds each graph behind the task's
preprocessing and head, starts a morphism child from its parent's trained weights,
trains it and saves its weights in the trial's folder. The time limit bounds the
whole `fit`: the search stops starting trials when the time left (less a reserve for
the final model) would not cover two epochs of a typical trial, and ends the running
one early; no trial trains for more than `trial_share` of the search's time. How a
search trains and proposes (learning rates, widening, the strategies' arguments,
screening, trial stopping) is a `SearchSettings` (`automl.engine.settings`).
"""

from __future__ import annotations

from automl.engine.base import Candidate, SearchBackend, SearchContext, rank
from automl.engine.settings import SearchSettings, current
from automl.engine.summaries import last_line, trial_order
from automl.errors import SearchError
from automl.graph.architecture import ArchitectureGraph

_NO_HIDDEN = ("input", "augment", "flatten", "dropout", "output", "bag")


def describe_op(op: dict) -> str:
    """A morphism's record as short text, e.g. "widen node=3 width=64" (the unit
    indices a widen copies, and other lists, are left out)."""
    args = " ".join(
        f"{k}={v.get('type', v) if isinstance(v, dict) else v}"
        for k, v in op.items()
        if k != "op" and not isinstance(v, list)
    )
    return f"{op.get('op', '?')} {args}".strip()


def graph_candidate(trial_id: str, score: float, graph: ArchitectureGraph, summary=None):
    """A `Candidate` whose layers are the graph's (`apply_graph`).

    A trial scored by cross-validation is the average of its fold models: fold f's
    layers are prefixed `f{f}_`.
    """
    folds = int((summary or {}).get("folds", 0))

    def apply(x, prefix: str):
        import keras

        from automl.graph.builder import apply_graph

        if not folds:
            return apply_graph(graph, x, prefix=prefix)
        outs = [apply_graph(graph, x, prefix=f"{prefix}f{f}_") for f in range(folds)]
        return keras.layers.Average(name=f"{prefix}folds_mean")(outs)

    return Candidate(trial_id, score, graph, apply, dict(summary or {}))


class GraphSearch(SearchBackend):
    """Runs a graph strategy through keras-tuner in the project directory.

    Args:
        context: what the estimator hands every backend.
        settings: how to train and propose trials; None: those of the innermost
            `automl.engine.settings.use` block, else the defaults.
    """

    def __init__(self, context: SearchContext, settings: SearchSettings | None = None):
        super().__init__(context)
        self.settings = settings = current() if settings is None else settings
        import keras_tuner

        from automl.engine.distributed import WorkerClient, keras_tuner_env_hidden
        from automl.engine.oracle import StrategyOracle
        from automl.engine.tuner import GraphTuner
        from automl.search.base import get_strategy
        from automl.search.spaces import MorphismSpace

        head = context.head
        strategy = get_strategy(context.strategy, **settings.strategy_args(context.strategy))
        space = MorphismSpace(
            context.preprocessor.graph_shape,
            head.n_outputs,
            head.activation,
            max_model_size=context.max_model_size,
            tokens=context.preprocessor.tokens,
            idf=context.preprocessor.idf,
        )
        self.oracle = StrategyOracle(
            strategy,
            space,
            keras_tuner.Objective(head.objective, head.direction),
            max_trials=context.budget.max_trials,
            seed=context.seed,
            time_limit=context.budget.seconds,
            final_members=context.ensemble_size,
            trial_share=settings.trial_share,
            converge_epochs=settings.converge_epochs,
            final_refit=context.refit,
        )
        with keras_tuner_env_hidden():  # automl runs keras-tuner's distributed mode itself
            self.tuner = GraphTuner(
                self.oracle,
                self.build,
                context.dataset,
                epochs=context.epochs,
                folds=context.folds,
                progress=context.progress,
                widen_noise=settings.widen_noise,
                widen_mode=settings.widen_mode,
                monitor_loss=settings.monitor_loss,
                stopping=settings.trial_stopping,
                schedule=settings.lr_schedule,
                fit_options=context.fit_options,
                directory=context.project.directory,
                project_name=context.project.name,
            )
        if context.role.kind == "worker":  # ask the chief (waits a bounded time for it)
            self.tuner.oracle = WorkerClient(self.oracle, context.role)
            self.tuner.tuner_id = context.role.tuner_id

    def build(self, graph: ArchitectureGraph):
        """The compiled model of one graph: preprocessing, graph, head.

        A linear model (no hidden layer) trains at the settings' `linear_learning_rate`
        (`bag_learning_rate` on a bag of tokens): it converges several times faster than
        at `learning_rate`, to the same score.
        """
        types = {graph.node(i).type for i in graph.order}
        rate = self.settings.learning_rate
        if types <= set(_NO_HIDDEN):
            linear = self.settings
            rate = linear.bag_learning_rate if "bag" in types else linear.linear_learning_rate
        return self.context.assemble([graph_candidate("", 0.0, graph)], learning_rate=rate)

    def search(self, train: tuple, val: tuple) -> None:
        from automl.search.spaces import table_size_cap

        context = self.context
        space = self.oracle.space
        if space.kind == "table" and context.max_model_size is None:
            rows = len(train[1]) + len(val[1])
            space.max_model_size = min(space.max_model_size, table_size_cap(rows))
        self._set_screen(train[0])
        role, done, scores = context.role, 0, []
        if role.kind == "worker":  # the chief keeps the clock and the trial count
            context.log(f"worker {role.tuner_id}: training trials for the chief at {role.address}")
        else:
            finished = self.oracle.observations()  # a resumed search shows their best
            scores = [self.oracle.get_trial(obs.trial_id).score for obs in finished]
            done = len(scores)
            limit = context.budget.seconds
            context.log(
                f"searching with strategy={context.strategy!r}: "
                + (
                    "trials while the time lasts"
                    if context.budget.open_trials
                    else f"{context.budget.max_trials} trials"
                )
                + (f", {done} already finished" if done else "")
                + (f", time limit {limit:.0f} s" if limit else "")
            )
            self.oracle.start_clock(context.budget.search_deadline)
        context.progress.start(done, scores)
        try:
            if role.kind == "chief":
                self._serve()
            else:
                self.tuner.search(train, val)
        except RuntimeError as err:  # keras-tuner: too many trials failed in a row
            if err is self.tuner.stop_error:  # the disk is full: resume once there is room
                raise
            if not self.candidates():
                raise SearchError(
                    f"The search stopped because trials kept failing ({err}). Look at the "
                    f"trial messages in {self.tuner.project_dir}, or change the settings."
                ) from None
            context.log(f"the search stopped early because trials kept failing: {err}")
        finally:
            context.progress.close()
        if role.kind == "worker":
            context.log(
                f"worker {role.tuner_id}: the search has ended; this worker ran "
                f"{self.tuner.oracle.trials_run} trial(s)"
            )

    def _set_screen(self, inputs) -> None:
        """Give the space a NASWOT screen on the first training inputs, if the strategy uses one."""
        import numpy as np

        from automl.data.arrays import n_samples, take
        from automl.search.screening import GraphScreener

        space, strategy = self.oracle.space, self.oracle.strategy
        wanted = strategy.name == "naswot" or (
            getattr(strategy, "screen_top", 0) and space.kind in self.settings.screen_kinds
        )
        if not wanted or self.context.role.kind == "worker":  # a worker proposes nothing
            return
        import keras

        from automl.graph.builder import build_model

        if getattr(inputs, "is_stream", False):
            batch = inputs.sample_inputs(self.settings.screen_batch)
        else:
            batch = take(inputs, np.arange(min(self.settings.screen_batch, n_samples(inputs))))
        model_inputs, x = self.context.preprocessor.build_inputs()  # screen the graph alone
        batch = keras.ops.convert_to_numpy(keras.Model(model_inputs, x)(batch))
        space.screen = GraphScreener(build_model, batch, seed=self.context.seed)

    def _serve(self) -> None:
        """Serve the oracle to the workers until the search ends (the chief trains nothing)."""
        from automl.engine.distributed import ChiefServer

        server = ChiefServer(self.oracle, self.context.role, self.context.progress)
        server.start()
        try:
            server.wait()
        finally:
            server.stop()

    def candidates(self) -> list[Candidate]:
        found = []
        for obs in self.oracle.observations():
            trial = self.oracle.get_trial(obs.trial_id)
            summary = self.tuner.trial_summary(obs.trial_id)
            found.append(graph_candidate(obs.trial_id, float(trial.score), obs.arch, summary))
        return rank(found, self.context.head)

    def load_model(self, candidate: Candidate):
        """The trial's trained model; for a cross-validated trial, its fold models averaged.

        Raises:
            DamagedFileError: a weights file is missing or fails its checksum.
        """
        from automl.engine.final import copy_weights
        from automl.training.fit import load_checked_weights

        folds = int(candidate.summary.get("folds", 0))
        if not folds:
            return self.tuner.load_model(self.oracle.get_trial(candidate.trial_id))
        combined = self.context.assemble([candidate])
        model = self.build(candidate.architecture)  # takes each fold's weights in turn
        for fold in range(folds):
            load_checked_weights(
                model,
                self.tuner.weights_path(candidate.trial_id, fold),
                self.tuner.weights_sha256(candidate.trial_id, fold),
            )
            copy_weights(model, combined, f"f{fold}_")
        combined.optimizer.build(combined.trainable_variables)  # saved whole: no warning on load
        return combined

    def mark_failed(self, candidate: Candidate, reason: str) -> None:
        self.oracle.mark_failed(candidate.trial_id, reason)

    def summary_rows(self) -> list[dict]:
        from automl.engine.oracle import PARENT

        rows = []
        for trial_id in sorted(self.oracle.trials, key=trial_order):
            trial = self.oracle.trials[trial_id]
            info = self.tuner.trial_summary(trial_id)
            values = trial.hyperparameters.values
            graph = self.tuner.trial_graph(trial_id)  # failed trials have no summary
            history = graph.history
            rows.append(
                {
                    "trial_id": trial_id,
                    "strategy": values.get("strategy", self.context.strategy),
                    "key": info.get("key") or graph.key(),
                    "params": info.get("params") or graph.count_params(),
                    "score": trial.score,
                    "search_score": None,
                    "val_loss": info.get("val_loss"),
                    "inference_ms": info.get("inference_ms"),
                    "epochs": info.get("epochs"),
                    "seconds": info.get("seconds"),
                    "parent": values.get(PARENT) or None,
                    "morphism": describe_op(history[-1])
                    if history and values.get(PARENT)
                    else None,
                    "status": str(trial.status),
                    "finished_at": info.get("finished_at"),
                    "reason": last_line(trial.message) or info.get("stopped_early"),
                }
            )
        return rows
