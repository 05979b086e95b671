"""The user-facing search strategies: the one list of the names `strategy=` takes.

Each `StrategyInfo` names the search backend that runs the strategy (as a lazy
"module:Class" string: importing this module imports no Keras or TensorFlow), the
data it searches (kinds of data, tasks, streams, several machines) and a line
describing it. The CLI's `--strategy` choices, the estimators' argument checks and
the engine all read `STRATEGIES`.

The graph strategies' proposal algorithms, which `automl.search.base.get_strategy`
builds on any search space (graphs, NAS-Bench-201 cells), are listed in the search
layer (`automl.search.base.PROPOSAL_STRATEGIES`): a graph strategy's name here is the
name of its proposal strategy there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from automl.errors import InputError

GRAPH_SEARCH = "automl.engine.graph_search:GraphSearch"
CELL_SEARCH = "automl.engine.cell_search:CellSearch"
KINDS = ("image", "table", "text")
TASKS = ("classification", "regression")
_MODELS = {"classification": "classifiers", "regression": "regressors"}


@dataclass(frozen=True)
class StrategyInfo:
    """One user-facing strategy.

    Attributes:
        name: what `strategy=` (and the CLI's `--strategy`) takes.
        backend: the `SearchBackend` that runs it, as "module:Class" (imported by
            `backend_class`, on first use).
        description: one line, for help texts.
        kinds: the kinds of data it searches ("image", "table", "text").
        tasks: the tasks it searches ("classification", "regression").
        streams: whether it reads a stream batch by batch (`automl.data.streaming`);
            if not, it needs the data in memory.
        distributed: whether it runs on a chief and workers (`chief=`, `worker=`).
    """

    name: str
    backend: str
    description: str
    kinds: tuple[str, ...] = KINDS
    tasks: tuple[str, ...] = TASKS
    streams: bool = True
    distributed: bool = False

    def supports(self, kind: str, task: str) -> bool:
        """Whether it searches models of this kind of data and task."""
        return kind in self.kinds and task in self.tasks

    def backend_class(self) -> type:
        """The `SearchBackend` class that runs it (imports its module)."""
        module, name = self.backend.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def scope(self) -> str:
        """What it searches, in words, e.g. "image classifiers"."""
        return " and ".join(f"{kind} {_MODELS[task]}" for kind in self.kinds for task in self.tasks)


STRATEGIES: dict[str, StrategyInfo] = {
    info.name: info
    for info in (
        StrategyInfo(
            "bayesian",
            GRAPH_SEARCH,
            "network morphism, a Gaussian process on a graph kernel",
            distributed=True,
        ),
        StrategyInfo("evolution", GRAPH_SEARCH, "regularized evolution", distributed=True),
        StrategyInfo(
            "random",
            GRAPH_SEARCH,
            "random graphs, or random morphisms of trained ones",
            distributed=True,
        ),
        StrategyInfo(
            "naswot",
            GRAPH_SEARCH,
            "training-free: the candidate with the best NASWOT score",
            kinds=("image", "table"),
        ),
        StrategyInfo(
            "milenas",
            CELL_SEARCH,
            "MiLeNAS differentiable cell search",
            kinds=("image",),
            tasks=("classification",),
            streams=False,
        ),
        StrategyInfo(
            "darts",
            CELL_SEARCH,
            "DARTS differentiable cell search",
            kinds=("image",),
            tasks=("classification",),
            streams=False,
        ),
    )
}
NAMES: tuple[str, ...] = tuple(STRATEGIES)


def get(name: str) -> StrategyInfo:
    """The strategy called `name`.

    Raises:
        InputError: no strategy has that name.
    """
    if not isinstance(name, str) or name not in STRATEGIES:
        raise InputError(f"Unknown strategy {name!r}. Choose one of {list(NAMES)}.")
    return STRATEGIES[name]


def backend_class(name: str) -> type:
    """The `SearchBackend` class that runs strategy `name` (InputError if unknown)."""
    return get(name).backend_class()


def names(
    *,
    kind: str | None = None,
    task: str | None = None,
    streams: bool | None = None,
    distributed: bool | None = None,
    backend: str | None = None,
) -> tuple[str, ...]:
    """The strategies, in `NAMES` order, that fit every condition given."""
    return tuple(
        info.name
        for info in STRATEGIES.values()
        if (kind is None or kind in info.kinds)
        and (task is None or task in info.tasks)
        and (streams is None or info.streams == streams)
        and (distributed is None or info.distributed == distributed)
        and (backend is None or info.backend == backend)
    )


def quoted(choices) -> str:
    """Names as text: "'a'", "'a' or 'b'", "'a', 'b' or 'c'"."""
    items = [repr(c) for c in choices]
    return " or ".join(filter(None, [", ".join(items[:-1]), items[-1]])) if items else ""


def check(name: str, kind: str, task: str) -> StrategyInfo:
    """The strategy called `name`, if it searches models of this kind of data and task.

    Raises:
        InputError: no strategy has that name, or it cannot search this kind and task
            (the message names those that can).
    """
    info = get(name)
    if not info.supports(kind, task):
        raise InputError(
            f"strategy={name!r} searches {info.scope} only; for {kind} {task} use "
            f"{quoted(names(kind=kind, task=task))}."
        )
    return info
