"""What the aggregation promises its readers beyond its numbers: the rows and labels of its tables, the provenance
in their attrs, its defaults, and its messages on bad input. Each test kills mutants the statistics tests in
tests/test_report.py let through (docs/testing.md, "Mutation scores")."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import make_cell
from wmaug.report import aggregate as agg
from wmaug.report.aggregate import ReportInputError, collect_scores

REPS = 50


def two_methods(tmp_path, seeds_y=range(1, 4), envs=("hopper", "ant")):
    """x leads y by 10 points at the last of three evaluations (steps 0, 5000, 10000), on two tasks."""
    dirs = []
    for env in envs:
        for s in range(1, 4):
            dirs.append(make_cell(tmp_path, env, "random", "x", s, [0.0, 5.0 + s, 20.0 + s]))
        for s in seeds_y:
            dirs.append(make_cell(tmp_path, env, "random", "y", s, [0.0, 1.0 + s, 10.0 + s]))
    return collect_scores(dirs)


def test_a_curve_without_evaluations_is_named(tmp_path):
    d = make_cell(tmp_path, "hopper", "random", "x", 1, [1.0, 2.0])
    pd.read_csv(d / "curve.csv").iloc[:0].to_csv(d / "curve.csv", index=False)  # the header only
    with pytest.raises(ReportInputError, match="curve.csv has no evaluations"):
        collect_scores([d])


def test_a_raw_return_that_is_not_a_number_reads_as_nan(tmp_path):
    """The raw return is a diagnostic column: a cell that could not record one still counts by its score."""
    d = make_cell(tmp_path, "hopper", "random", "x", 1, [1.0, 2.0])
    curve = pd.read_csv(d / "curve.csv").astype({"raw_return": object})
    curve.loc[curve.index[-1], "raw_return"] = "lost"  # not one of read_csv's NaN spellings
    curve.to_csv(d / "curve.csv", index=False)
    scores = collect_scores([d])
    assert scores["raw_return"].isna().sum() == 1 and scores["raw_return"].notna().sum() == len(scores) - 1


def test_tables_carry_their_bootstrap_settings(tmp_path):
    """reps and seed in attrs: the provenance that makes an interval reproducible."""
    scores = two_methods(tmp_path)
    tables = [agg.curve_intervals(scores, reps=REPS, seed=3), agg.aggregate_metrics(scores, reps=REPS, seed=3),
              agg.probability_of_improvement(scores, "x", "y", reps=REPS, seed=3)]
    for table in tables:
        assert table.attrs["reps"] == REPS and table.attrs["seed"] == 3 and table.attrs["phase"] == "online"


def test_probability_of_improvement_labels_its_rows_and_reads_the_step_asked(tmp_path):
    scores = two_methods(tmp_path)
    p = agg.probability_of_improvement(scores, "x", "y", reps=REPS)
    total, tasks = p[p.scope == "aggregate"].iloc[0], p[p.scope == "task"]
    assert (total["env"], total["dataset"], total["n_tasks"]) == ("all", "all", 2)
    assert sorted(zip(tasks["env"], tasks["dataset"])) == [("ant", "random"), ("hopper", "random")]
    assert (tasks["n_tasks"] == 1).all()
    assert total["value"] == 1.0  # x's final scores (21-23) all beat y's (11-13)
    # at step 0 every run scores 0: ties, P = 1/2
    assert (agg.probability_of_improvement(scores, "x", "y", reps=REPS, step=0)["value"] == 0.5).all()


def test_probability_of_improvement_refuses_unequal_seed_counts_within_a_method_by_default(tmp_path):
    scores = two_methods(tmp_path)
    drop = (scores.method == "y") & (scores.env == "ant") & (scores.seed == 3)
    with pytest.raises(ValueError, match="unequal seed counts"):
        agg.probability_of_improvement(scores[~drop], "x", "y", reps=REPS)


def test_methods_without_scores_or_with_other_tasks_are_named(tmp_path):
    scores = two_methods(tmp_path)
    with pytest.raises(ValueError, match=r"no scores for method\(s\) \['z'\]"):
        agg.probability_of_improvement(scores, "x", "z", reps=REPS)
    fewer = scores[~((scores.method == "y") & (scores.env == "ant"))]
    with pytest.raises(ValueError, match=r"y: lacks \['ant/random'\]"):
        agg.probability_of_improvement(fewer, "x", "y", reps=REPS)


def test_one_table_of_two_studies_is_refused(tmp_path):
    scores = two_methods(tmp_path)
    mixed = pd.concat([scores, scores.assign(study="balanced_replay")], ignore_index=True)
    with pytest.raises(ValueError, match="several values of 'study'"):
        agg.curve_intervals(mixed, reps=REPS)
