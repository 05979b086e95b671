import numpy as np
import pytest

from automl.search.base import Observation, get_strategy
from automl.search.spaces import MorphismSpace


def _proposals(seed, n=4):
    space = MorphismSpace((8, 8, 1), 10)
    strategy = get_strategy("random")
    history = []
    keys = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        proposal = strategy.propose(space, history, rng)
        keys.append(space.key(proposal.arch))
        history.append(Observation(proposal.arch, float(i), str(i)))
    return keys


def test_same_seed_proposes_same_architectures():
    assert _proposals(0) == _proposals(0)
    assert _proposals(0) != _proposals(1)


def test_first_proposal_is_the_default_and_never_repeats():
    space = MorphismSpace((8, 8, 1), 10)
    keys = _proposals(5, n=6)
    assert keys[0] == space.key(space.initial()[0])
    assert len(set(keys)) == len(keys)


def test_space_respects_max_model_size():
    space = MorphismSpace((8, 8, 1), 10, max_model_size=15_000)
    rng = np.random.default_rng(0)
    assert all(space.sample(rng).count_params() <= 15_000 for _ in range(20))


def test_space_json_round_trip():
    space = MorphismSpace((13,), 3)
    arch = space.sample(np.random.default_rng(0))
    assert space.key(space.loads(space.dumps(arch))) == space.key(arch)


def test_unknown_strategy_lists_choices():
    with pytest.raises(ValueError, match="Choose one of"):
        get_strategy("nope")
