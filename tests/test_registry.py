"""The strategy registry (`automl.engine.registry`) and the graph search's settings."""

import dataclasses
import subprocess
import sys

import pytest

from automl.engine import registry
from automl.engine.settings import SearchSettings, current, use
from automl.errors import InputError
from automl.search.base import PROPOSAL_STRATEGIES


def test_registry_lists_the_strategies_and_imports_no_keras():
    assert registry.NAMES == ("bayesian", "evolution", "random", "naswot", "milenas", "darts")
    code = (
        "import sys; import automl.engine.registry, automl.engine.settings; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_strategy_has_a_backend_and_graph_strategies_a_proposal_strategy():
    from automl.engine.base import SearchBackend
    from automl.engine.cell_search import CellSearch
    from automl.engine.graph_search import GraphSearch

    for info in registry.STRATEGIES.values():
        assert issubclass(info.backend_class(), SearchBackend)
        assert info.description
    assert set(registry.names(backend=registry.GRAPH_SEARCH)) <= set(PROPOSAL_STRATEGIES)
    assert registry.backend_class("bayesian") is GraphSearch
    assert registry.backend_class("darts") is CellSearch


def test_what_each_strategy_searches():
    assert registry.names(kind="table", task="regression") == (
        "bayesian",
        "evolution",
        "random",
        "naswot",
    )
    assert registry.names(distributed=True) == ("bayesian", "evolution", "random")
    assert registry.names(streams=False) == ("milenas", "darts")
    assert registry.check("darts", "image", "classification").name == "darts"
    with pytest.raises(InputError, match="Unknown strategy 'nope'. Choose one of"):
        registry.get("nope")
    with pytest.raises(InputError, match="searches image classifiers only; for table"):
        registry.check("milenas", "table", "classification")
    assert registry.quoted(["a", "b", "c"]) == "'a', 'b' or 'c'"
    assert registry.quoted(["a"]) == "'a'"


def test_cli_offers_the_registry_strategies(capsys):
    from automl.cli.commands import main

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "{" + ",".join(registry.NAMES) + "}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "digits", "--strategy", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_search_settings_defaults_and_scope():
    settings = SearchSettings()
    assert settings.strategy_args("bayesian") == {
        "n_initial": 2,
        "cost_aware": True,
        "screen_top": 8,
    }
    assert settings.strategy_args("evolution") == {"population_size": 4}
    assert settings.strategy_args("random") == {}
    assert SearchSettings(random_mutate_probability=0.0).strategy_args("random") == {
        "mutate_probability": 0.0
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.trial_share = None
    variant = SearchSettings(trial_stopping=None, trial_share=None)
    assert current() == SearchSettings()
    with use(variant):
        assert current() is variant
    assert current() == SearchSettings()
    with pytest.raises(TypeError), use({"trial_share": None}):
        pass
