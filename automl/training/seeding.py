"""Seeds for each step of a search, so a killed and resumed `fit` ends bit for bit the same.

Every random draw of a step (building a model draws its initial weights and the seeds
of its dropout layers from Python's `random`; training draws dropout masks and the
order of the data) is seeded by that step alone, never by what the process did
before it: a resumed process has not run the trials that a straight run ran first.
`seed_step` seeds everything right before a step builds or trains;
`reseed_generators` also sets the state of the dropout layers' seed generators of a
model built earlier, right before it trains.
"""

from __future__ import annotations

import hashlib


def step_seed(seed: int, step: str, member: str = "") -> int:
    """The seed of one step ("member", "refit", "ensemble", ...) of the search with `seed`,
    for one `member` (a trial id): the same arguments always give the same seed."""
    digest = hashlib.sha256(f"{seed}/{step}/{member}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_step(seed: int, step: str, member: str = "") -> int:
    """Seed Python, NumPy and the Keras backend for a step (`step_seed`); returns the seed."""
    import keras

    value = step_seed(seed, step, member)
    keras.utils.set_random_seed(value)
    return value


def reseed_generators(model, seed: int) -> int:
    """Set each Keras seed generator of `model` (those of its dropout and noise layers,
    whose initial state was drawn when it was built) to a state made from `seed`, in
    the order of the model's variables; returns how many there were."""
    import numpy as np

    weights = {id(v) for v in model.weights}
    states = [
        v
        for v in model.variables
        if id(v) not in weights and v.name.endswith("seed_generator_state")
    ]
    for number, state in enumerate(states):
        value = step_seed(seed, "generator", str(number))
        state.assign(np.array([value, 0], dtype=str(state.dtype)))
    return len(states)
