"""The Pareto front of a recipe search (gates/pareto.py): pure."""
from hypothesis import given
from hypothesis import strategies as st

from modelgate.gates.pareto import pareto_front


def _rows(points):
    return [{"recipe": f"r{i}", "size": s, "score": c} for i, (s, c) in enumerate(points)]


def test_smaller_and_better_dominates_and_ties_keep_only_the_smaller():
    rows = _rows([(100, 0.9), (50, 0.95), (50, 0.80), (200, 0.99), (60, 0.95)])
    assert pareto_front(rows) == ["r1", "r3"]


def test_lower_is_better_metrics_invert_the_score_direction():
    rows = _rows([(100, 1.20), (50, 1.30), (200, 1.10), (150, 1.25)])
    assert pareto_front(rows, higher_is_better=False) == ["r1", "r0", "r2"]


def test_rows_without_a_size_or_a_finite_score_are_not_on_the_front():
    rows = [{"recipe": "a", "size": None, "score": 1.0}, {"recipe": "b", "size": 10, "score": float("nan")},
            {"recipe": "c", "size": 20, "score": 0.5}]
    assert pareto_front(rows) == ["c"]


@given(st.lists(st.tuples(st.integers(1, 1000), st.floats(0, 1)), min_size=1, max_size=12))
def test_front_members_are_undominated_and_every_other_point_is_dominated(points):
    rows = _rows(points)
    front = set(pareto_front(rows))

    def dominates(a, b):
        no_worse = a["size"] <= b["size"] and a["score"] >= b["score"]
        return no_worse and (a["size"] < b["size"] or a["score"] > b["score"])
    for r in rows:
        assert (r["recipe"] in front) == (not any(dominates(o, r) for o in rows if o is not r))
