"""The final model: the best finished trials, refit and combined into one Keras model.

Members are the best `ensemble_size` candidates among those scoring at least the
median candidate (the median keeps trials that a time limit cut short out). Each
member is fine-tuned on train + validation data at a tenth of its learning rate
when the estimator split the validation data off itself (a trial scored by
cross-validation is the average of its fold models, which between them have
seen all the data, so it is not refit). Then the members' architectures are
built side by side behind one copy of the preprocessing, their outputs
averaged, and each member's trained weights copied in by layer name.

Nothing of this step is saved: a `fit` killed in it (or run again on a finished
search) does it again from the trials' weights. So each of its random draws is seeded
by the step itself (`automl.training.seeding`), never by what the process did before:
each member is built after seeding ("member", its trial id), its refit seeds
("refit", its trial id) and resets its dropout layers' seed generators from that seed,
and the ensemble is built after seeding ("ensemble", the members). A straight run, a
resumed one and a run again all end bit for bit the same.
"""

from __future__ import annotations

import time

import numpy as np

from automl.engine.base import Candidate, SearchBackend, SearchContext
from automl.errors import DamagedFileError, SearchError
from automl.search.cost import refit_epochs, refit_seconds
from automl.training.seeding import reseed_generators, seed_step


def select_members(ranked: list[Candidate], context: SearchContext, size: int) -> list[Candidate]:
    """The best `size` of `ranked` (best first) among those scoring at least the median."""
    sign = context.head.sign
    median = float(np.median([sign * c.score for c in ranked]))
    return [c for c in ranked if sign * c.score >= median][:size]


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


def ensemble(context: SearchContext, members: list[Candidate], models: list):
    """One model averaging the members' outputs, each with its trained weights."""
    seed_step(context.seed, "ensemble", ",".join(c.trial_id for c in members))
    combined = context.assemble(members)
    for i, model in enumerate(models):
        missing = copy_weights(model, combined, f"m{i}_")
        if missing:
            raise SearchError(
                f"Could not copy the weights of ensemble member {members[i].trial_id} into "
                f"layers {sorted(missing)}. Pass ensemble_size=1 to export the best model alone."
            )
    combined.optimizer.build(combined.trainable_variables)  # saved whole: no warning on load
    return combined


def final_model(
    context: SearchContext,
    backend: SearchBackend,
    ranked: list[Candidate],
    full: tuple | None,
    size: int,
    deadline: float | None = None,
):
    """Refit the members chosen from `ranked` and combine them; returns (model, members).

    A member whose weights are missing or damaged is marked FAILED and replaced.
    """
    started = time.time()
    members, models = load_members(context, backend, ranked, size)
    if deadline is not None and len(models) > 1:  # building the ensemble takes about as long
        deadline -= time.time() - started
    for model, candidate in zip(models, members):
        if full is not None:
            refit(model, full, context, candidate, deadline)
    if len(models) == 1:
        return models[0], members
    context.log(
        f"ensemble of trials {', '.join(c.trial_id for c in members)} (their outputs averaged)"
    )
    return ensemble(context, members, models), members


def load_members(
    context: SearchContext, backend: SearchBackend, ranked: list[Candidate], size: int
) -> tuple[list[Candidate], list]:
    """(members, their loaded models); members with damaged weights are marked FAILED.

    Raises:
        SearchError: no finished trial has intact weights.
    """
    ranked = list(ranked)
    while ranked:
        members, models = select_members(ranked, context, size), []
        for candidate in members:
            seed_step(context.seed, "member", candidate.trial_id)  # its dropout seeds, too
            try:
                models.append(backend.load_model(candidate))
            except DamagedFileError as err:
                context.log(f"trial {candidate.trial_id} is not used: {err}")
                backend.mark_failed(candidate, f"{err}; this trial is no longer used")
                ranked.remove(candidate)
                break
        else:
            return members, models
    raise SearchError(
        f"Every finished trial's weights are missing or damaged, so there is no model. Pass "
        f"overwrite=True to search again in {context.project.path}."
    )
