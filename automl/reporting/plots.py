"""Figures of a search and of architectures, drawn with matplotlib.

`plot_search` draws a search summary (`search_summary()` of an estimator): each
finished trial's score over time with the best score so far, and score against
model size. `plot_architecture` draws an `ArchitectureGraph` as a layered DAG of
layers, or a cell `Genotype` (DARTS or NAS-Bench-201) as one small DAG per cell.

matplotlib is imported only when a function is called, and nothing here loads
TensorFlow. The figures come from `matplotlib.pyplot.subplots` and are never
shown by these functions: in a notebook they display when the cell ends (assign
the result, `fig = plot_search(...)`, so it displays once); in a script save it
with `fig.savefig(path)` and release it with `matplotlib.pyplot.close(fig)`.

Example:
    >>> fig = plot_search(clf.search_summary())  # doctest: +SKIP
    >>> fig.savefig("search.png")  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Any

from automl.errors import InputError

_TRIAL = {"color": "tab:blue", "marker": "o", "s": 28, "alpha": 0.8, "zorder": 3}
_MEMBER = {"color": "tab:orange", "marker": "*", "s": 160, "edgecolors": "black", "zorder": 4}
_BOX = {"boxstyle": "round,pad=0.35", "linewidth": 0.8, "edgecolor": "0.3"}
_FILL = {"io": "#f5d9a8", "weighted": "#b4d0ec", "other": "#e6e6e6"}


def _pyplot():
    """matplotlib.pyplot, imported on first use."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "automl.reporting.plots needs matplotlib: pip install matplotlib"
        ) from None
    return plt


def plot_search(summary, direction: str = "max", objective: str = "score", title=None):
    """Plots how a search went: score over time and score against model size.

    Args:
        summary: a pandas DataFrame with one row per trial and the columns
            `score` and `elapsed` (seconds since the search started, when the
            trial finished); `params` and `ensemble` (bool) are used when present.
            Rows with a missing score or elapsed time (unfinished or failed
            trials) are left out.
        direction: "max" if a higher score is better, "min" if lower is.
        objective: the name of the score, used as the y axis label.
        title: the figure title; by default the number of trials and the best score.

    Returns:
        A `matplotlib.figure.Figure` with two axes. Left: each trial's score
        against elapsed seconds, with a step line of the best score so far.
        Right: score against the parameter count (log scale). Ensemble members
        are drawn as stars in both. Call `fig.savefig(path)` to write it to a file.

    Raises:
        InputError: if `summary` lacks the columns, no trial has both a score and
            an elapsed time, or `direction` is neither "max" nor "min".
    """
    import numpy as np
    import pandas as pd

    if direction not in ("max", "min"):
        raise InputError(f"direction must be 'max' or 'min'. Received: {direction!r}")
    columns = list(getattr(summary, "columns", []))
    missing = [c for c in ("score", "elapsed") if c not in columns]
    if not isinstance(summary, pd.DataFrame) or missing:
        raise InputError(
            "plot_search needs a DataFrame with the columns 'score' and 'elapsed', such as "
            f"`search_summary()`. Received: {type(summary).__name__} lacking {missing}."
        )
    frame = pd.DataFrame(
        {
            "score": pd.to_numeric(summary["score"], errors="coerce"),
            "elapsed": pd.to_numeric(summary["elapsed"], errors="coerce"),
            "params": pd.to_numeric(summary.get("params", np.nan), errors="coerce"),
            "ensemble": summary["ensemble"].eq(True) if "ensemble" in columns else False,
        },
        index=summary.index,
    )
    frame = frame.dropna(subset=["score", "elapsed"]).sort_values("elapsed", kind="stable")
    if frame.empty:
        raise InputError(
            f"There is no finished trial to plot: none of the {len(summary)} rows has both a "
            "score and an elapsed time. Plot the summary once a trial has finished."
        )
    scores = frame["score"].to_numpy()
    best = (np.maximum if direction == "max" else np.minimum).accumulate(scores)

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    left.step(frame["elapsed"], best, where="post", color="0.25", label="best so far")
    sized = frame[frame["params"] > 0]
    for ax, data, x in ((left, frame, "elapsed"), (right, sized, "params")):
        plain, members = data[~data["ensemble"]], data[data["ensemble"]]
        if len(plain):
            ax.scatter(plain[x], plain["score"], label="trial", **_TRIAL)
        if len(members):
            ax.scatter(members[x], members["score"], label="ensemble member", **_MEMBER)
        ax.set_ylabel(objective)
        ax.grid(alpha=0.3)
    left.set_xlabel("seconds since the search started")
    left.legend(loc="best", fontsize="small")
    right.set_xscale("log")
    right.set_xlabel("parameters")
    if sized.empty:
        right.text(0.5, 0.5, "no parameter counts", ha="center", transform=right.transAxes)
    fig.suptitle(title or f"{len(frame)} finished trials, best {objective} {best[-1]:.4g}")
    return fig


def plot_architecture(architecture, title=None):
    """Draws an architecture graph or a cell genotype.

    Args:
        architecture: an `automl.graph.ArchitectureGraph`, drawn top to bottom
            as boxes (layer type and width, output shape) joined by arrows; or an
            `automl.cells.genotype.Genotype`, drawn left to right as one DAG per cell
            (normal and reduction for DARTS, one cell for NAS-Bench-201) whose
            edges are labelled with their operations (`none` edges are left out).
        title: the figure title; by default the size of a graph, none for a genotype.

    Returns:
        A `matplotlib.figure.Figure`; call `fig.savefig(path)` to write it to a file.

    Raises:
        InputError: if `architecture` is neither of the two.
    """
    from automl.graph.architecture import ArchitectureGraph

    if isinstance(architecture, ArchitectureGraph):
        return _plot_graph(architecture, title)
    # A Genotype exists only once its module is loaded; importing it here would load Keras.
    genotype = getattr(sys.modules.get("automl.cells.genotype"), "Genotype", None)
    if genotype is not None and isinstance(architecture, genotype):
        return _plot_genotype(architecture, title)
    raise InputError(
        "plot_architecture takes an automl.graph.ArchitectureGraph or an "
        f"automl.cells.genotype.Genotype. Received: {type(architecture).__name__}."
    )


def layered_layout(digraph, order: list | None = None) -> dict[Any, tuple[float, float]]:
    """Positions for a DAG drawn top to bottom.

    A node's layer is its longest-path depth from a source (y = -layer). The
    nodes of one layer are spread one unit apart around x = 0, sorted by the
    mean x of their inputs (then by topological order) to keep crossings few.

    Args:
        digraph: a `networkx.DiGraph` without cycles.
        order: a topological order of its nodes; computed when not given.

    Returns:
        Node -> (x, y).
    """
    import networkx as nx

    order = list(nx.topological_sort(digraph)) if order is None else list(order)
    depth: dict[Any, int] = {}
    layers: dict[int, list] = {}
    for node in order:
        depth[node] = max((depth[p] + 1 for p in digraph.predecessors(node)), default=0)
        layers.setdefault(depth[node], []).append(node)
    pos: dict[Any, tuple[float, float]] = {}
    for layer in sorted(layers):
        nodes = layers[layer]
        if layer:
            nodes.sort(
                key=lambda n: sum(pos[p][0] for p in digraph.predecessors(n)) / digraph.in_degree(n)
            )
        for k, node in enumerate(nodes):
            pos[node] = (k - (len(nodes) - 1) / 2, -float(layer))
    return pos


def _draw_edges(ax, digraph, pos, axis: int, labels=None, **style) -> None:
    """Arrows (and their `labels`): straight between adjacent layers, bowed when they skip.

    Layers lie one unit apart along `axis`; a skipping edge bows out by about
    the same distance, however many layers it skips.
    """
    import networkx as nx

    spans: dict[int, list] = {}
    for u, v in digraph.edges:
        spans.setdefault(round(abs(pos[u][axis] - pos[v][axis])), []).append((u, v))
    for span, edges in spans.items():
        curve = f"arc3,rad={min(0.4, 1.6 / span) if span > 1 else 0:.3f}"
        nx.draw_networkx_edges(
            digraph,
            pos,
            edges,
            ax=ax,
            arrows=True,
            arrowstyle="-|>",
            connectionstyle=curve,
            **style,
        )
        chosen = {e: labels[e] for e in edges if e in (labels or {})}
        if chosen:
            texts = nx.draw_networkx_edge_labels(
                digraph,
                pos,
                chosen,
                font_size=7,
                ax=ax,
                node_size=style.get("node_size", 300),
                connectionstyle=curve,
            )
            for text in texts.values():
                text.set_gid("edge-label")


def _plot_graph(graph, title):
    import networkx as nx

    pos = layered_layout(graph.digraph, graph.order)
    labels = {}
    for i in graph.order:
        node = graph.node(i)
        head = f"{node.type} {node.width}" if node.width is not None else node.type
        labels[i] = f"{head}\n{'x'.join(str(d) for d in graph.shape(i))}"
    layers = int(-min(y for _, y in pos.values())) + 1
    spread = max(x for x, _ in pos.values()) * 2 + 1
    plt = _pyplot()
    size = (max(4.0, 2.2 * spread), max(3.0, 0.75 * layers + 0.8))
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    _draw_edges(ax, graph.digraph, pos, 1, min_source_margin=14, min_target_margin=14)
    texts = nx.draw_networkx_labels(graph.digraph, pos, labels, font_size=8, ax=ax)
    for i, text in texts.items():
        node = graph.node(i)
        io, weighted = node.type in ("input", "output"), node.width is not None
        kind = "io" if io else "weighted" if weighted else "other"
        text.set_bbox({**_BOX, "facecolor": _FILL[kind]})
        text.set_gid("node-label")
    ax.set_xlim(-spread / 2 - 0.4, spread / 2 + 0.4)
    ax.set_ylim(-layers + 0.5, 0.5)
    ax.axis("off")
    ax.set_title(title or f"{len(graph)} layers, {graph.count_params():,} parameters")
    return fig


def _cell_digraph(cell, space: str):
    """The DAG of one cell: node -> label, and edge -> op label."""
    import networkx as nx

    digraph = nx.DiGraph()
    if space == "darts":
        names = {0: "$c_{k-2}$", 1: "$c_{k-1}$", "out": "$c_{k}$"}
        names.update({k + 2: str(k + 2) for k in range(len(cell))})
    else:
        names = {k: str(k) for k in range(len(cell) + 1)}
        names[0], names[len(cell)] = "0 in", f"{len(cell)} out"
    digraph.add_nodes_from(names)
    ops: dict[tuple, str] = {}
    for target, entries in enumerate(cell, start=2 if space == "darts" else 1):
        for op, source in entries:
            if op != "none":
                digraph.add_edge(source, target)
                ops[(source, target)] = ", ".join(filter(None, [ops.get((source, target)), op]))
    if space == "darts":
        digraph.add_edges_from((k, "out") for k in range(2, len(cell) + 2))
    return digraph, names, ops


def _plot_genotype(genotype, title):
    import networkx as nx

    if genotype.space == "darts":
        cells = [("normal cell", genotype.normal), ("reduction cell", genotype.reduction)]
    else:
        cells = [("NAS-Bench-201 cell", genotype.normal)]
    plt = _pyplot()
    size = (6.0 * len(cells), 4.0)
    fig, axes = plt.subplots(1, len(cells), figsize=size, squeeze=False, layout="constrained")
    for ax, (name, cell) in zip(axes[0], cells):
        digraph, names, ops = _cell_digraph(cell, genotype.space)
        layers = layered_layout(digraph, sorted(digraph, key=lambda n: (n == "out", str(n))))
        pos = {node: (-y, -x) for node, (x, y) in layers.items()}  # left to right
        nx.draw_networkx_nodes(
            digraph, pos, ax=ax, node_size=900, node_color=_FILL["weighted"], edgecolors="0.3"
        )
        _draw_edges(ax, digraph, pos, 0, ops, node_size=900, edge_color="0.35")
        texts = nx.draw_networkx_labels(digraph, pos, names, font_size=8, ax=ax)
        for text in texts.values():
            text.set_gid("node-label")
        ax.set_title(name)
        ax.axis("off")
        ax.margins(0.15)
    if title:
        fig.suptitle(title)
    return fig
