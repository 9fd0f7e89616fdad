"""Exact quantile scores without a global window: ties, boundaries, small populations."""
from __future__ import annotations

import random

import pytest

from memberlake.value.ranks import multi_scores, scores


@pytest.mark.parametrize("small", [20_000, 0])      # driver shortcut, and the parallel range path
def test_scores_are_exact_against_brute_force(spark, monkeypatch, small):
    import memberlake.value.ranks as ranks

    monkeypatch.setattr(ranks, "SMALL", small)
    rng = random.Random(3)
    values = [rng.randint(0, 999) for _ in range(5000)] + [None] * 7
    df = spark.createDataFrame([(f"p{i}", v) for i, v in enumerate(values)], "person_id string, v int")
    got = {r.person_id: r.s for r in scores(df, "v", "s").collect()}
    present = sorted(v for v in values if v is not None)
    n = len(present)
    from bisect import bisect_left

    for i, v in enumerate(values):
        expected = None if v is None else 1 + 5 * bisect_left(present, v) // n
        assert got[f"p{i}"] == expected, (v, got[f"p{i}"], expected)


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


def test_counted_scores_two_columns_in_one_pass_keep_column_order(spark):
    # r descending: values 1, 2, 2, 9 -> n_below (from the high end) 3, 1, 1, 0 -> 1 + 5k // 4 = 4, 2, 2, 1
    # f ascending: values 5, 5, 7, null -> 1, 1, 1 + 5 * 2 // 3 = 4, null
    df = spark.createDataFrame([("a", 1, 5), ("b", 2, 5), ("c", 2, 7), ("d", 9, None)],
                               "person_id string, r int, f long")
    out = multi_scores(df, [("r", "rs", True), ("f", "fs", False)], [])
    assert out.columns == ["person_id", "r", "f", "rs", "fs"]
    got = {row.person_id: (row.rs, row.fs) for row in out.collect()}
    assert got == {"a": (4, 1), "b": (2, 1), "c": (2, 4), "d": (1, None)}


@pytest.mark.parametrize("small", [20_000, 0])      # the ranged column counted after all, or cut in ranges
def test_multi_scores_counted_and_ranged_columns_against_brute_force(spark, monkeypatch, small):
    from bisect import bisect_left

    import memberlake.value.ranks as ranks

    monkeypatch.setattr(ranks, "SMALL", small)
    rng = random.Random(5)
    rows = [(f"p{i}", rng.randint(0, 400), None if i % 97 == 0 else round(rng.uniform(0, 900), 2)) for i in range(3000)]
    df = spark.createDataFrame(rows, "person_id string, days int, spend double")
    out = multi_scores(df, [("days", "d_score", True)], [("spend", "s_score", False)])
    assert out.columns == ["person_id", "days", "spend", "d_score", "s_score"]
    got = {r.person_id: (r.d_score, r.s_score) for r in out.collect()}
    days_desc = sorted(-d for _, d, _ in rows)
    spend = sorted(s for _, _, s in rows if s is not None)
    for pid, d, s in rows:
        want_d = 1 + 5 * bisect_left(days_desc, -d) // len(rows)
        want_s = None if s is None else 1 + 5 * bisect_left(spend, s) // len(spend)
        assert got[pid] == (want_d, want_s), (pid, d, s)


def test_decimal_values_take_the_counting_path(spark):
    from decimal import Decimal

    # 1.10, 2.20, 2.20 (n = 3) -> n_below 0, 1, 1 -> 1, 1 + 5 // 3 = 2, 2; null stays null
    df = spark.createDataFrame([("a", Decimal("1.10")), ("b", Decimal("2.20")), ("c", Decimal("2.20")), ("d", None)],
                               "person_id string, v decimal(18,2)")
    got = {r.person_id: r.s for r in scores(df, "v", "s").collect()}
    assert got == {"a": 1, "b": 2, "c": 2, "d": None}
