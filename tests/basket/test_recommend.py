"""Bought-together lists and per-person recommendations from a fixed rule set."""
from __future__ import annotations

import pytest

from memberlake.basket.recommend import bought_together, recommendations

RULES = "segment_by string, segment string, antecedent array<string>, consequent string, support double, confidence double, lift double"


def _rules(spark):
    return spark.createDataFrame([
        ("all", "all", ["a"], "b", 0.3, 0.6, 2.0),      # score 1.2
        ("all", "all", ["a"], "c", 0.2, 0.5, 3.0),      # score 1.5
        ("all", "all", ["a", "c"], "d", 0.1, 0.9, 4.0),  # score 3.6, needs a and c
        ("all", "all", ["e"], "b", 0.1, 0.8, 2.0),      # score 1.6: b again, better than a->b
        ("channel", "app", ["a"], "z", 0.5, 0.9, 9.0),  # segment rule: not used for persons
    ], RULES)


def _pairs(spark, rows):
    return spark.createDataFrame(rows, "person_id string, item string")


def test_bought_together_ranks_by_confidence_times_lift(spark):
    got = [(r.item, r.rank, r.recommended_item, r.score) for r in
           bought_together(_rules(spark), 1).orderBy("item").collect()]
    assert got == [("a", 1, "c", pytest.approx(1.5)), ("e", 1, "b", pytest.approx(1.6))]


def test_recommendations_need_whole_antecedent_and_skip_owned_items(spark):
    recent = _pairs(spark, [("P1", "a"), ("P2", "a"), ("P2", "c"), ("P3", "a"), ("P3", "e"), ("P4", "x")])
    owned = _pairs(spark, [("P1", "a"), ("P1", "b"), ("P2", "a"), ("P2", "c"), ("P3", "a"), ("P3", "e"),
                          ("P4", "x")])
    recs = recommendations(_rules(spark), recent, owned, top_n=5).collect()
    by_person: dict[str, list[tuple[int, str]]] = {}
    for r in recs:
        by_person.setdefault(r.person_id, []).append((r.rank, r.item))
    assert sorted(by_person["P1"]) == [(1, "c")]                      # b already owned
    assert sorted(by_person["P2"]) == [(1, "d"), (2, "b")]            # {a,c} -> d; c is owned
    assert sorted(by_person["P3"]) == [(1, "b"), (2, "c")]            # b via e (1.6) beats c (1.5)
    assert "P4" not in by_person
    p3b = next(r for r in recs if r.person_id == "P3" and r.item == "b")
    assert p3b.because == ["e"] and p3b.score == pytest.approx(1.6)
    assert not any(r.item == "z" for r in recs)


def test_top_n_cuts_per_person(spark):
    recent = _pairs(spark, [("P2", "a"), ("P2", "c")])
    recs = recommendations(_rules(spark), recent, _pairs(spark, [("P2", "a")]), top_n=1).collect()
    assert [(r.person_id, r.rank, r.item) for r in recs] == [("P2", 1, "d")]
