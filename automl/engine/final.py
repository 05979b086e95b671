"""The final model: the best finished trials, chosen together, refit and combined.

Members. When each of the best `POOL` finished trials saved its predictions on the
validation data (`automl.engine.predictions`), the members are chosen by greedy
forward selection (`automl.engine.selection`): from the best single trial, the trial
whose addition most improves the validation score of the weighted average joins,
with replacement, up to `ensemble_size` distinct members, and each member weighs the
number of times it was chosen over the total. A trial whose predictions file is
missing or damaged is left out of the choice. Otherwise (cross-validated trials, a
validation stream, cell-search candidates, projects of an older version) the members
are the best `ensemble_size` candidates among those scoring at least the median
candidate (the median keeps trials that a time limit cut short out), weighted equally.

Calibration. A classifier whose members were chosen by their predictions gets one
temperature T, fitted on those predictions (`automl.engine.calibration`) and kept
when it lowers the validation NLL enough: each member's output layer then gives
logits, scaled by 1 / T and passed through a softmax, before the weighted sum. What
the validation data says of the choice (the scores of the ensemble and of the best
single trial; the NLL and the calibration error before and after T) is measured on
the members as trained, before any refit, and reported to the estimator.

Refit. Each member is fine-tuned on train + validation data at a tenth of its
learning rate when the estimator split the validation data off itself (a trial
scored by cross-validation is the average of its fold models, which between them
have seen all the data, so it is not refit); the chosen weights and temperature are
kept. Then the members' architectures are built side by side behind one copy of the
preprocessing, their outputs weighted and added (averaged, when the weights are
equal), and each member's trained weights copied in by layer name.

Export. The final model leaves out the layers that act only while training (the
augmentation a trial may have chosen; `automl.graph.builder.inference_model`): it
predicts the same, and exports to every format.

Nothing of this step is saved: a `fit` killed in it (or run again on a finished
search) does it again from the trials' weights and predictions. The choice and the
temperature depend on the saved predictions alone, and each random draw is seeded by
the step itself (`automl.training.seeding`), never by what the process did before:
each member is built after seeding ("member", its trial id), its refit seeds
("refit", its trial id) and resets its dropout layers' seed generators from that seed,
and the ensemble is built after seeding ("ensemble", the members). A straight run, a
resumed one and a run again all end bit for bit the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from automl.engine.base import Candidate, SearchBackend, SearchContext
from automl.engine.predictions import SHA_KEY, load_predictions
from automl.engine.selection import Selection, greedy_selection, score
from automl.errors import DamagedFileError, SearchError
from automl.project import layout
from automl.search.cost import refit_epochs, refit_seconds
from automl.training.seeding import reseed_generators, seed_step

POOL = 20  # the best trials the greedy selection chooses from


@dataclass
class Choice:
    """The members chosen (best ranked first) and how many times each was chosen.

    `predictions` (the members' validation predictions) and `selection` are None
    under the median rule.
    """

    members: list[Candidate]
    counts: list[int]
    predictions: list[np.ndarray] | None = None
    selection: Selection | None = None

    @property
    def weights(self) -> list[float]:
        total = sum(self.counts)
        return [c / total for c in self.counts]


def select_members(ranked: list[Candidate], context: SearchContext, size: int) -> list[Candidate]:
    """The best `size` of `ranked` (best first) among those scoring at least the median."""
    sign = context.head.sign
    median = float(np.median([sign * c.score for c in ranked]))
    return [c for c in ranked if sign * c.score >= median][:size]


def validation_predictions(
    context: SearchContext, ranked: list[Candidate], val: tuple | None
) -> dict[str, np.ndarray] | None:
    """The saved validation predictions of the best `POOL` of `ranked`, by trial id.

    None (the median rule) without validation arrays, or when one of those trials
    recorded no predictions; a trial whose file is missing or damaged is left out.
    """
    if val is None or getattr(val[0], "is_stream", False) or val[1] is None:
        return None
    pool = ranked[:POOL]
    if not pool or any(SHA_KEY not in c.summary for c in pool):
        return None
    shape = (len(val[1]), context.head.n_outputs)
    found = {}
    for c in pool:
        path = layout.trial_path(context.project.path, c.trial_id, layout.VAL_PREDICTIONS_FILE)
        predictions, why = load_predictions(path, c.summary[SHA_KEY], shape)
        if predictions is None:
            context.log(f"trial {c.trial_id} is left out of the ensemble selection: {why}")
        else:
            found[c.trial_id] = predictions
    return found or None


def choose(
    context: SearchContext,
    ranked: list[Candidate],
    size: int,
    targets: np.ndarray | None = None,
    saved: dict[str, np.ndarray] | None = None,
) -> Choice:
    """The members of `ranked`: by greedy selection on the `saved` validation
    predictions of `targets`, or by the median rule without them."""
    pool = [c for c in ranked if c.trial_id in (saved or {})]
    if not pool:
        members = select_members(ranked, context, size)
        return Choice(members, [1] * len(members))
    task = context.head.task
    selection = greedy_selection(targets, [saved[c.trial_id] for c in pool], task, size)
    times = dict(zip(selection.members, selection.counts))
    order = sorted(times)  # best ranked first
    return Choice(
        [pool[i] for i in order],
        [times[i] for i in order],
        [saved[pool[i].trial_id] for i in order],
        selection,
    )


def refit(
    model, full: tuple, context: SearchContext, candidate: Candidate, deadline: float | None = None
) -> bool:
    """Fine-tune a member on `full` = (inputs, targets) at a tenth of its learning rate.

    Runs half the member's best epoch count (1 to 20), seeded by ("refit", the trial id):
    the backend and the model's seed generators, whenever it was built. With a
    `deadline`, a refit that the trial's measured epoch times (its first epoch's
    tracing, then each epoch on a quarter more data) say cannot finish in time is
    skipped. Returns whether it ran.
    """
    import keras

    summary = candidate.summary
    if not summary:
        return False
    epochs = refit_epochs(summary)
    if deadline is not None and time.time() + refit_seconds(summary) > deadline:
        context.log(f"no time left to refit trial {candidate.trial_id}; kept as trained")
        return False
    context.log(
        f"refitting trial {candidate.trial_id} on train + validation data for {epochs} epochs"
    )
    reseed_generators(model, seed_step(context.seed, "refit", candidate.trial_id))
    rate = model.optimizer.learning_rate
    rate.assign(float(keras.ops.convert_to_numpy(rate)) * 0.1)
    options = context.fit_options(f"refit_{candidate.trial_id}", trial=False)
    model.fit(
        context.dataset(*full, shuffle=True), epochs=epochs, shuffle=False, verbose=0, **options
    )
    return True


def copy_weights(model, combined, prefix: str) -> set:
    """Copy each layer's weights of `model` to the layer of `combined` named `prefix` + its name.

    Returns the names of `combined`'s layers under `prefix` that have weights and
    got none (an empty set when every one was filled).
    """
    wanted = {
        layer.name for layer in combined.layers if layer.name.startswith(prefix) and layer.weights
    }
    for layer in model.layers:
        if layer.weights and prefix + layer.name in wanted:
            combined.get_layer(prefix + layer.name).set_weights(layer.get_weights())
            wanted.discard(prefix + layer.name)
    return wanted


def ensemble(
    context: SearchContext,
    members: list[Candidate],
    models: list,
    weights: list[float] | None = None,
):
    """One model of the members' outputs weighted by `weights` (None: averaged), each
    member with its trained weights; with one member, that member alone."""
    seed_step(context.seed, "ensemble", ",".join(c.trial_id for c in members))
    combined = context.assemble(members, weights=weights)
    for i, model in enumerate(models):
        missing = copy_weights(model, combined, f"m{i}_" if len(members) > 1 else "")
        if missing:
            raise SearchError(
                f"Could not copy the weights of ensemble member {members[i].trial_id} into "
                f"layers {sorted(missing)}. Pass ensemble_size=1 to export the best model alone."
            )
    combined.optimizer.build(combined.trainable_variables)  # saved whole: no warning on load
    return combined


def can_calibrate(candidate: Candidate) -> bool:
    """Whether the candidate's output layer can give logits: a graph trained once. (A cell
    search `Genotype` ends in its own softmax classifier, and a cross-validated trial in
    an average of its folds' probabilities; neither has validation predictions saved, so
    neither is calibrated.)"""
    from automl.graph.architecture import ArchitectureGraph

    return isinstance(candidate.architecture, ArchitectureGraph) and not candidate.summary.get(
        "folds"
    )


def calibrated(candidate: Candidate, temperature: float) -> Candidate:
    """`candidate` whose output layer gives logits, scaled by 1 / `temperature` (a
    `Rescaling` layer "temperature") and passed through a softmax ("calibrated").

    Its layers keep their names, so the trained weights copy in as before.
    """
    from automl.graph.architecture import ArchitectureGraph, Node

    graph = candidate.architecture
    nodes = list(graph.nodes.values())
    out = graph.node(graph.output_id)
    linear = Node(out.id, out.type, {**out.params, "activation": "linear"}, out.inputs)
    logits_graph = ArchitectureGraph([linear if n.id == out.id else n for n in nodes])

    def apply(x, prefix: str):
        import keras

        from automl.graph.builder import apply_graph

        logits = apply_graph(logits_graph, x, prefix=prefix)
        scaled = keras.layers.Rescaling(1.0 / temperature, name=f"{prefix}temperature")(logits)
        return keras.layers.Softmax(name=f"{prefix}calibrated")(scaled)

    return Candidate(candidate.trial_id, candidate.score, graph, apply, candidate.summary)


def report(context: SearchContext, choice: Choice, targets: np.ndarray) -> dict | None:
    """What the validation data says of a choice made by greedy selection (None under
    the median rule); fits the temperature of a classifier. Logs both."""
    from automl.engine.calibration import calibrate, combine

    if choice.selection is None:
        if len(choice.members) > 1:
            ids = ", ".join(c.trial_id for c in choice.members)
            context.log(f"ensemble of trials {ids} (their outputs averaged)")
        return None
    metric, selection = context.head.metric, choice.selection
    result = {
        "objective": metric,
        "weights": {c.trial_id: w for c, w in zip(choice.members, choice.weights)},
        "ensemble_score": selection.score.value,
        "best_single_score": selection.best_single.value,
        "temperature": None,
    }
    classifier = context.head.task == "classification"
    if classifier and all(map(can_calibrate, choice.members)):
        result.update(calibrate(choice.predictions, choice.weights, targets))
        if result["temperature"] != 1.0:  # it may move the argmax of a weighted sum
            probabilities = combine(choice.predictions, choice.weights, result["temperature"])
            result["ensemble_score"] = score(targets, probabilities, "classification").value
    members = ", ".join(f"{c.trial_id} (x{n})" for c, n in zip(choice.members, choice.counts))
    context.log(
        f"ensemble of trials {members}: validation {metric} {result['ensemble_score']:.4f} "
        f"(best single trial {selection.best_single.value:.4f})"
    )
    if result["temperature"] is None:
        return result
    fitted = result["fitted_temperature"]
    if result["temperature"] != 1.0:
        context.log(
            f"temperature scaling T={fitted:.3f}: validation NLL "
            f"{result['nll_before']:.4f} -> {result['nll_after']:.4f}, calibration error "
            f"{result['ece_before']:.4f} -> {result['ece_after']:.4f}"
        )
    else:
        context.log(
            f"no temperature scaling (the fitted T={fitted:.3f} gains too little): validation "
            f"NLL {result['nll_before']:.4f}, calibration error {result['ece_before']:.4f}"
        )
    return result


def final_model(
    context: SearchContext,
    backend: SearchBackend,
    ranked: list[Candidate],
    full: tuple | None,
    size: int,
    deadline: float | None = None,
    val: tuple | None = None,
):
    """Choose members from `ranked`, refit them and combine them; (model, members, report).

    A member whose weights are missing or damaged is marked FAILED and replaced.

    Args:
        context: the search's context.
        backend: the backend whose trials `ranked` lists.
        ranked: the finished trials, best first.
        full: (inputs, targets) to refit the members on, or None.
        size: the most distinct members.
        deadline: the time by which the model must be ready, or None.
        val: (inputs, targets) the trials were scored on; None chooses by the median rule.

    Returns:
        The Keras model, its members (best ranked first), and None under the median
        rule, else a dict: "objective" (the head's metric), "weights" ({trial id:
        weight}), "ensemble_score" and "best_single_score" (validation scores before
        the refit) and "temperature" (None for regression); for classification also
        "fitted_temperature", "nll_before", "nll_after", "ece_before" and "ece_after".
    """
    started = time.time()
    saved = validation_predictions(context, ranked, val)
    targets = None if saved is None else np.asarray(val[1])
    choice, models = load_members(
        context, backend, ranked, size, lambda r: choose(context, r, size, targets, saved)
    )
    result = report(context, choice, targets)
    temperature = (result or {}).get("temperature") or 1.0
    members = choice.members
    if temperature != 1.0:
        members = [calibrated(c, temperature) for c in members]
    built = len(models) > 1 or temperature != 1.0
    if deadline is not None and built:  # building the ensemble takes about as long
        deadline -= time.time() - started
    for model, candidate in zip(models, choice.members):
        if full is not None:
            refit(model, full, context, candidate, deadline)
    model = models[0] if not built else ensemble(context, members, models, choice.weights)
    return for_export(context, model), choice.members, result


def for_export(context: SearchContext, model):
    """`model` without its training-only layers (augmentation), compiled, its optimizer
    built (saved whole: no warning on load)."""
    from automl.graph.builder import inference_model

    exported = inference_model(model)
    if exported is not model:
        context.head.compile(exported)
    if not exported.optimizer.built:
        exported.optimizer.build(exported.trainable_variables)
    return exported


def load_members(
    context: SearchContext,
    backend: SearchBackend,
    ranked: list[Candidate],
    size: int,
    select=None,
) -> tuple[Choice, list]:
    """(the choice of members, their loaded models); a member with damaged weights is
    marked FAILED and the choice made again without it.

    Args:
        select: ranked trials -> `Choice`; by default the median rule (`choose`).

    Raises:
        SearchError: no finished trial has intact weights.
    """
    select = select or (lambda trials: choose(context, trials, size))
    ranked = list(ranked)
    while ranked:
        choice, models = select(ranked), []
        for candidate in choice.members:
            seed_step(context.seed, "member", candidate.trial_id)  # its dropout seeds, too
            try:
                models.append(backend.load_model(candidate))
            except DamagedFileError as err:
                context.log(f"trial {candidate.trial_id} is not used: {err}")
                backend.mark_failed(candidate, f"{err}; this trial is no longer used")
                ranked.remove(candidate)
                break
        else:
            return choice, models
    raise SearchError(
        f"Every finished trial's weights are missing or damaged, so there is no model. Pass "
        f"overwrite=True to search again in {context.project.path}."
    )
