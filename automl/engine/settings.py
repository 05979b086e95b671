"""How a graph search trains and proposes its trials: `SearchSettings`, kept as data.

The defaults are the library's. A different `SearchSettings` is handed to a search
explicitly (`GraphSearch(context, settings)`), or, for a search an estimator runs,
for the duration of a `with use(settings):` block:

    from automl.engine.settings import SearchSettings, use

    with use(SearchSettings(trial_stopping=None, trial_share=None)):
        clf.fit(x, y)

(`benchmarks/anytime.py` runs its ablation's variants this way.)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchSettings:
    """The switches of a graph search (strategies "bayesian", "evolution", "random",
    "naswot"); the defaults are the library's.

    Attributes:
        learning_rate: Adam's learning rate for a trial with hidden layers.
        linear_learning_rate: the learning rate of a linear trial (no hidden layer):
            it converges several times faster than at `learning_rate`, to the same score.
        bag_learning_rate: the learning rate of a linear model on a bag of tokens (text):
            its inputs are L2-normalised over thousands of tokens, so it takes larger steps.
        widen_mode: where a widen's new units start ("zero": copies of old units with
            zero outgoing weights, so the function is kept exactly and they learn
            apart; "split": exact copies that share the outgoing weights).
        widen_noise: noise added to the widened copies' incoming weights, relative to
            their layer's kernel std (0: exact copies).
        bayesian_n_initial: "bayesian": random proposals before the Gaussian process
            (budgets on real data are tens of trials, not hundreds).
        bayesian_cost_aware: "bayesian": rate candidates by expected improvement per
            predicted second of training (False: plain expected improvement).
        bayesian_screen_top: "bayesian": screen this many of the acquisition's best
            candidates with NASWOT before choosing, on `screen_kinds` (0: no screening).
        evolution_population_size: "evolution": the population, the most recent
            finished trials.
        random_mutate_probability: "random": the chance that a proposal is a random
            step from a trained architecture rather than a fresh sample (None: the
            strategy's own default).
        screen_kinds: the kinds of data ("image", "table") on which "bayesian"
            screens its candidates ("naswot" screens on every kind).
        screen_batch: training inputs the screening score is computed on.
        trial_stopping: the rule that stops a trial early ("curve": when its predicted
            final score cannot beat the best trial's; see `automl.search.stopping`;
            None: no stopping rule).
        monitor_loss: whether early stopping watches the validation loss (True) or
            the objective (on a few hundred rows the accuracy moves in steps of one
            row and stops training epochs before the loss has bottomed out).
        trial_share: with a time limit, the largest share of the search's time one
            trial may train for (a short search on large images still runs several
            trials, each stopped near its plateau); None: no limit.
        converge_epochs: with a time limit, the epochs a trial that starts from scratch
            (not grown from a trained parent) gets time for even past its share, and
            needs time for to start at all (0: no such rule).
        lr_schedule: "cosine": each trial's learning rate decays to its planned last
            epoch (known from its time budget, or fixed `epochs`); None: a constant rate.
    """

    learning_rate: float = 1e-3
    linear_learning_rate: float = 1e-2
    bag_learning_rate: float = 3e-2
    widen_mode: str = "zero"
    widen_noise: float = 1.0
    bayesian_n_initial: int = 2
    bayesian_cost_aware: bool = True
    bayesian_screen_top: int = 8
    evolution_population_size: int = 4
    random_mutate_probability: float | None = None
    screen_kinds: tuple[str, ...] = ("image",)
    screen_batch: int = 64
    trial_stopping: str | None = "curve"
    monitor_loss: bool = True
    trial_share: float | None = 1 / 3
    converge_epochs: int = 8
    lr_schedule: str | None = "cosine"

    def strategy_args(self, strategy: str) -> dict:
        """The keyword arguments of proposal strategy `strategy` (`get_strategy`)."""
        if strategy == "bayesian":
            return {
                "n_initial": self.bayesian_n_initial,
                "cost_aware": self.bayesian_cost_aware,
                "screen_top": self.bayesian_screen_top,
            }
        if strategy == "evolution":
            return {"population_size": self.evolution_population_size}
        if strategy == "random" and self.random_mutate_probability is not None:
            return {"mutate_probability": self.random_mutate_probability}
        return {}


_CURRENT: contextvars.ContextVar[SearchSettings | None] = contextvars.ContextVar(
    "automl_search_settings", default=None
)


def current() -> SearchSettings:
    """The settings of the innermost `use` block, else the defaults."""
    return _CURRENT.get() or SearchSettings()


@contextlib.contextmanager
def use(settings: SearchSettings) -> Iterator[SearchSettings]:
    """Run the graph searches started inside the block (by an estimator's `fit`, say)
    with `settings`."""
    if not isinstance(settings, SearchSettings):
        raise TypeError(f"use() takes a SearchSettings. Received: {settings!r}.")
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)
