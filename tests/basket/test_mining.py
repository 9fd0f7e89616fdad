"""FP-Growth itemsets and rules on a basket set small enough to work out by hand.

Baskets: B1 {a,b,c}  B2 {a,b}  B3 {a,c}  B4 {b,c}  B5 {a,b,d}     (N = 5)
Counts:  a 4, b 4, c 3, d 1;  ab 3, ac 2, bc 2, ad 1, bd 1;  abc 1, abd 1
At min support 0.4 (count 2): a, b, c, ab, ac, bc are frequent; d, abc, abd are not.
a->b: confidence 3/4, lift 0.75/0.8 = 0.9375, leverage 0.6 - 0.8*0.8 = -0.04,
      conviction (1 - 0.8)/(1 - 0.75) = 0.8
c->a: confidence 2/3, lift (2/3)/0.8 = 0.8333, leverage 0.4 - 0.6*0.8 = -0.08,
      conviction (1 - 0.8)/(1 - 2/3) = 0.6
"""
from __future__ import annotations

import pytest

from memberlake.basket.mining import association_rules, frequent_itemsets, segment_lines

BASKETS = {"B1": "abc", "B2": "ab", "B3": "ac", "B4": "bc", "B5": "abd"}


def _lines(spark, baskets=BASKETS, extra_col=None):
    rows = [(b, i, (extra_col or {}).get(b)) for b, items in baskets.items() for i in items]
    return spark.createDataFrame(rows, "basket_id string, item string, store string")


def _itemsets(result):
    return {(r.segment_by, r.segment, "".join(r["items"])): (r.freq, r.support) for r in result.itemsets.collect()}


@pytest.mark.parametrize("support, expected", [(0.4, 2), (0.41, 3), (2, 2), (0.0001, 1)])
def test_min_count_fraction_rounds_up_and_absolute_count(spark, support, expected):
    result = frequent_itemsets(segment_lines(_lines(spark), []), support)
    assert result.segments.first().min_count == expected       # 0.41 x 5 = 2.05 -> 3 baskets


@pytest.mark.parametrize("support", [0.4, 2])
def test_itemsets_by_hand(spark, support):
    result = frequent_itemsets(segment_lines(_lines(spark), []), support, num_partitions=2)
    got = _itemsets(result)
    expected = {"a": 4, "b": 4, "c": 3, "ab": 3, "ac": 2, "bc": 2}
    assert {k[2]: v[0] for k, v in got.items()} == expected
    assert all(k[:2] == ("all", "all") for k in got)
    assert got[("all", "all", "ab")][1] == pytest.approx(0.6)


def test_rules_by_hand(spark):
    itemsets = frequent_itemsets(segment_lines(_lines(spark), []), 0.4).itemsets
    rules = {("".join(r.antecedent), r.consequent): r for r in association_rules(itemsets, 0.0, 0.0).collect()}
    assert set(rules) == {("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")}
    ab = rules[("a", "b")]
    assert (ab.support, ab.confidence, ab.lift) == pytest.approx((0.6, 0.75, 0.9375))
    assert (ab.leverage, ab.conviction) == pytest.approx((-0.04, 0.8))
    ca = rules[("c", "a")]
    assert (ca.confidence, ca.lift, ca.leverage, ca.conviction) == pytest.approx((2 / 3, 0.8333333, -0.08, 0.6))
    assert (ca.antecedent_support, ca.consequent_support) == pytest.approx((0.6, 0.8))
    # thresholds: confidence >= 0.7 keeps a->b and b->a; lift >= 0.9 the same two
    assert {(tuple(r.antecedent), r.consequent) for r in association_rules(itemsets, 0.7, 0).collect()} == {
        (("a",), "b"), (("b",), "a")}
    assert association_rules(itemsets, 0.0, 0.9).count() == 2


def test_three_item_rules_and_infinite_conviction(spark):
    baskets = {"B1": "xyz", "B2": "xyz", "B3": "x", "B4": "w"}
    itemsets = frequent_itemsets(segment_lines(_lines(spark, baskets), []), 2).itemsets
    rules = {("".join(r.antecedent), r.consequent): r for r in association_rules(itemsets, 0, 0).collect()}
    xy_z = rules[("xy", "z")]
    assert xy_z.confidence == 1.0 and xy_z.conviction is None       # never wrong: infinite conviction
    assert xy_z.lift == pytest.approx(1.0 / 0.5)
    assert rules[("x", "y")].confidence == pytest.approx(2 / 3)


def test_segments_are_mined_separately_in_one_pass(spark):
    # store S1 holds B1,B2,B5 (a,b together in all three); S2 holds B3,B4
    stores = {"B1": "S1", "B2": "S1", "B5": "S1", "B3": "S2", "B4": "S2"}
    result = frequent_itemsets(segment_lines(_lines(spark, extra_col=stores), ["store"]), 0.6, min_segment_baskets=1)
    got = _itemsets(result)
    # S1 (N=3, count >= 2): a 3, b 3, c... 1 no, ab 3
    assert {k[2]: v for k, v in got.items() if k[1] == "S1"} == {"a": (3, 1.0), "b": (3, 1.0), "ab": (3, 1.0)}
    # S2 (N=2, count >= 2): only c (in both)
    assert {k[2]: v[0] for k, v in got.items() if k[1] == "S2"} == {"c": 2}
    # all (N=5, count >= 3): a, b, c, ab
    assert {k[2]: v[0] for k, v in got.items() if k[1] == "all"} == {"a": 4, "b": 4, "c": 3, "ab": 3}
    rules = association_rules(result.itemsets, 0, 0).where("segment = 'S1'").collect()
    assert {r.lift for r in rules} == {1.0}         # per-segment lift uses the segment's own N


def test_small_segments_are_skipped_and_reported(spark):
    stores = {"B1": "S1", "B2": "S1", "B5": "S1", "B3": "S2", "B4": "S2"}
    result = frequent_itemsets(segment_lines(_lines(spark, extra_col=stores), ["store"]), 0.6, min_segment_baskets=3)
    mined = {(r.segment, r.baskets, r.mined) for r in result.segments.collect()}
    assert mined == {("all", 5, True), ("S1", 3, True), ("S2", 2, False)}
    assert result.itemsets.where("segment = 'S2'").count() == 0


def test_basket_without_two_frequent_items_gives_singles_only(spark):
    result = frequent_itemsets(segment_lines(_lines(spark, {"B1": "a", "B2": "a", "B3": "b"}), []), 2)
    assert {"".join(r["items"]): r.freq for r in result.itemsets.collect()} == {"a": 2}


def test_items_and_segments_with_any_characters_decode_exactly(spark):
    """A token is the segment's 16-character key then the item: items holding separators, digits
    that look like a key, or non-Latin letters come back unchanged, and each segment keeps its own
    itemsets. ``tokens`` counts the frequent (segment, item) pairs."""
    items = ["0123456789abcdef-x", "a\x1fb|c", "牛奶"]
    rows = [(f"B{b}", item, "S\x1f1" if b < 3 else "S 2") for b in range(5) for item in items]
    rows += [("B9", "lonely", "S 2")]
    lines = spark.createDataFrame(rows, "basket_id string, item string, store string")
    result = frequent_itemsets(segment_lines(lines, ["store"]), 2)
    got = {(r.segment, tuple(r["items"])): r.freq for r in result.itemsets.where("size = 3").collect()}
    assert got == {("all", tuple(sorted(items))): 5, ("S\x1f1", tuple(sorted(items))): 3,
                   ("S 2", tuple(sorted(items))): 2}
    singles = {(r.segment, r["items"][0]) for r in result.itemsets.where("size = 1").collect()}
    assert singles == {(s, i) for s in ("all", "S\x1f1", "S 2") for i in items}     # "lonely" is in one basket
    assert result.tokens == 9
