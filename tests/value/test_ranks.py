"""Exact quantile scores without a global window: ties, boundaries, small populations."""
from __future__ import annotations

import random

from memberlake.value.ranks import n_below, scores


def test_n_below_is_exact_across_ranges(spark):
    rng = random.Random(3)
    values = [rng.randint(0, 999) for _ in range(5000)] + [None] * 7
    df = spark.createDataFrame([(v,) for v in values], "v int")
    got = {r.v: (r.n_below, r.n) for r in n_below(df, "v").collect()}
    present = [v for v in values if v is not None]
    for v, (below, n) in got.items():
        assert below == sum(1 for x in present if x < v)
        assert n == len(present)
    assert set(got) == set(present)


def test_scores_ties_share_a_score_and_boundaries(spark):
    # 10 persons: values 1..10 -> n_below 0..9 -> score 1 + floor(5 * k / 10) = 1,1,2,2,3,3,4,4,5,5
    df = spark.createDataFrame([(f"p{i}", i) for i in range(1, 11)] + [("tie", 10)], "person_id string, v int")
    got = {r.person_id: r.s for r in scores(df, "v", "s").collect()}
    assert [got[f"p{i}"] for i in range(1, 10)] == [1, 1, 1, 2, 2, 3, 3, 4, 4]   # n = 11 now
    assert got["p10"] == got["tie"] == 5


def test_descending_scores_small_values_high(spark):
    df = spark.createDataFrame([("a", 1), ("b", 50), ("c", 400)], "person_id string, recency int")
    got = {r.person_id: r.s for r in scores(df, "recency", "s", descending=True).collect()}
    assert got == {"a": 4, "b": 2, "c": 1}


def test_single_person_and_all_equal(spark):
    one = spark.createDataFrame([("a", 5.0)], "person_id string, v double")
    assert scores(one, "v", "s").first().s == 1
    same = spark.createDataFrame([(f"p{i}", 7.0) for i in range(6)], "person_id string, v double")
    assert {r.s for r in scores(same, "v", "s").collect()} == {1}


def test_range_path_and_driver_path_agree(spark, monkeypatch):
    import memberlake.value.ranks as ranks

    rng = random.Random(9)
    df = spark.createDataFrame([(float(rng.randint(0, 300)),) for _ in range(3000)], "v double")
    small = {r.v: r.n_below for r in ranks.n_below(df, "v").collect()}
    monkeypatch.setattr(ranks, "SMALL", 0)                 # force the parallel range computation
    ranged = {r.v: r.n_below for r in ranks.n_below(df, "v").collect()}
    assert small == ranged
