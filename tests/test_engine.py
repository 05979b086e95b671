"""The engine's parts on their own: heads, ranking, member selection, project files, cell plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from automl.data.heads import ClassificationHead, RegressionHead
from automl.engine.base import Budget, Candidate, SearchContext, rank
from automl.engine.cell_search import options, plan_candidates
from automl.engine.final import select_members
from automl.errors import InputError
from automl.project.files import read_json, write_json
from automl.project.folder import Project


def _candidates(scores):
    return [Candidate(str(i), s, None, None) for i, s in enumerate(scores)]


def _context(head, tmp_path):
    return SearchContext(None, head, Project(tmp_path, "p"), "random", Budget(3))


def test_heads_know_their_objective_and_direction():
    clf = ClassificationHead.fit(np.array(["a", "b", "a"]))
    reg = RegressionHead.fit(np.array([1.0, 2.0, 4.0]))
    assert (clf.objective, clf.direction, clf.sign, clf.n_outputs) == ("val_accuracy", "max", 1, 2)
    assert (reg.objective, reg.direction, reg.sign, reg.n_outputs) == ("val_mse", "min", -1, 1)
    assert clf.activation == "softmax" and reg.activation == "linear"
    np.testing.assert_array_equal(clf.decode(np.array([[0.1, 0.9], [0.8, 0.2]])), ["b", "a"])


def test_regression_head_scales_outputs_back_to_the_target_space():
    import keras

    head = RegressionHead.fit(np.array([10.0, 20.0, 30.0]))
    inputs = keras.Input((1,))
    model = keras.Model(inputs, head.output(inputs))
    out = model.predict(np.array([[0.0], [1.0]]), verbose=0)[:, 0]
    std = np.std([10.0, 20.0, 30.0])
    np.testing.assert_allclose(out, [20.0, 20.0 + std], rtol=1e-5)


def test_rank_orders_by_direction_and_breaks_ties_by_trial_number():
    found = [Candidate(t, s, None, None) for t, s in [("10", 0.9), ("2", 0.9), ("3", 0.5)]]
    maximise = rank(found, ClassificationHead.fit(np.array([0, 1])))
    assert [c.trial_id for c in maximise] == ["2", "10", "3"]
    minimise = rank(found, RegressionHead.fit(np.array([0.0, 1.0])))
    assert [c.trial_id for c in minimise] == ["3", "2", "10"]


def test_members_are_the_best_at_or_above_the_median(tmp_path):
    head = ClassificationHead.fit(np.array([0, 1]))
    ranked = rank(_candidates([0.1, 0.9, 0.5, 0.8, 0.2]), head)
    members = select_members(ranked, _context(head, tmp_path), size=5)
    assert [c.score for c in members] == [0.9, 0.8, 0.5]
    assert [c.score for c in select_members(ranked, _context(head, tmp_path), 2)] == [0.9, 0.8]
    reg = RegressionHead.fit(np.array([0.0, 1.0]))
    ranked = rank(_candidates([4.0, 1.0, 9.0]), reg)  # mse: lower is better
    assert [c.score for c in select_members(ranked, _context(reg, tmp_path), 5)] == [1.0, 4.0]


def test_project_refuses_another_search_and_overwrite_starts_over(tmp_path):
    project = Project(tmp_path, "p")
    project.start({"task": "A"})
    project.check({"task": "A"})  # same search: resumes
    with pytest.raises(InputError, match="overwrite=True"):
        project.check({"task": "B"})
    (tmp_path / "p" / "trial_0").mkdir()
    again = Project(tmp_path, "p", overwrite=True)
    again.check({"task": "B"})
    again.start({"task": "B"}, clear=True)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "automl_project.json",  # the marker stays
        "automl_task.json",
    ]


def test_json_files_are_replaced_whole_and_damage_names_the_file(tmp_path):
    path = tmp_path / "d" / "state.json"
    write_json(str(path), {"a": 1})
    write_json(str(path), {"a": 2})
    assert read_json(str(path)) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary left
    assert read_json(str(tmp_path / "missing.json"), default={}) == {}
    path.write_text('{"a": ')
    with pytest.raises(InputError, match="state.json.*damaged"):
        read_json(str(path))


def test_cell_plan_puts_the_chosen_genotype_first_then_sizes_by_accuracy():
    result = {
        "genotype": "G2",
        "by_size": [
            {"model_size": [1, 0], "genotype": "G1", "accuracy": 0.5, "epoch": 0},
            {"model_size": [2, 0], "genotype": "G2", "accuracy": 0.7, "epoch": 1},
            {"model_size": [3, 0], "genotype": "G3", "accuracy": 0.6, "epoch": 2},
        ],
        "history": [{"genotype": "G2", "model_size": [2, 0], "search_val_accuracy": 0.7}],
    }
    plan = plan_candidates(result)
    assert [p["genotype"] for p in plan] == ["G2", "G3", "G1"]
    assert [p["search_score"] for p in plan] == [0.7, 0.6, 0.5]
    assert plan[0]["model_size"] == [2, 0]
    json.dumps(plan)  # stored in the project as JSON


def test_cell_options_are_checked():
    assert options({"cells": 2})["cells"] == 2
    with pytest.raises(InputError, match="Unknown cell_options \\['cels'\\]"):
        options({"cels": 2})
    with pytest.raises(InputError, match="search_fraction"):
        options({"search_fraction": 0})
    with pytest.raises(InputError, match="space must be"):
        options({"space": "nb101"})


def test_budget_counts_down():
    assert Budget(3).left() == float("inf")
    budget = Budget(3, seconds=100.0)
    assert 99.0 < budget.left() <= 100.0
    assert budget.deadline == pytest.approx(budget.started + 100.0)


def test_a_refit_runs_only_when_its_measured_epoch_times_fit_before_the_deadline(tmp_path):
    import time

    from automl.engine.base import final_reserve
    from automl.engine.final import refit

    head = ClassificationHead.fit(np.array([0, 1]))
    context = _context(head, tmp_path)
    summary = {
        "best_epoch": 4,
        "epochs": 6,
        "seconds": 12.0,  # 2 refit epochs
        "first_epoch_seconds": 5.0,
        "epoch_seconds": 1.0,
    }
    candidate = Candidate("0", 0.9, None, None, summary)
    # tracing 4 s + 2 epochs x 1 s x 1.25 = 6.5 s, x1.1 = 7.15 s: too long for 7 s (the
    # mean seconds per epoch alone, 2 s, would have said 2 x 2 x 1.25 = 5 s)
    assert refit(None, (None, None), context, candidate, deadline=time.time() + 7.0) is False
    assert final_reserve(None) == 0.0
    assert final_reserve(30) == 3.0 and final_reserve(100) == 8.0 and final_reserve(1e5) == 120.0


def test_a_morphism_is_described_without_its_unit_indices():
    from automl.engine.graph_search import describe_op

    widen = {"op": "widen", "node": 26, "width": 256, "copy_from": list(range(128))}
    assert describe_op(widen) == "widen node=26 width=256"
    deepen = {"op": "deepen", "after": 49, "layer": {"type": "dense", "units": 64}}
    assert describe_op(deepen) == "deepen after=49 layer=dense"
