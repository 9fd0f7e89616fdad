"""Reviewer labels and the precision/recall curve over match thresholds, by hand."""
from __future__ import annotations

import pytest

from memberlake.errors import InputError
from memberlake.identity.labels import labels_from_file
from memberlake.thresholds import at_threshold, labelled_thresholds, reviewable, threshold_curve, weight_of


def _pairs(spark, rows):
    return spark.createDataFrame(rows, "match_weight double, match boolean")


def test_curve_counts_each_threshold_by_hand(spark):
    # 3 true pairs scored, 1 true pair vetoed (null weight), 1 true pair blocking never formed
    pairs = _pairs(spark, [(10.0, True), (8.0, True), (5.0, False), (3.0, True), (-2.0, False), (None, True)])
    curve = threshold_curve(pairs, missed=1)
    assert [r["weight"] for r in curve] == [10.0, 8.0, 5.0, 3.0, -2.0]
    by = {r["weight"]: r for r in curve}
    assert (by[10.0]["tp"], by[10.0]["fp"], by[10.0]["fn"]) == (1, 0, 4)
    assert (by[5.0]["tp"], by[5.0]["fp"], by[5.0]["fn"]) == (2, 1, 3)
    assert by[3.0]["precision"] == pytest.approx(3 / 4) and by[3.0]["recall"] == pytest.approx(3 / 5)
    assert by[3.0]["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert (by[-2.0]["tp"], by[-2.0]["fp"], by[-2.0]["fn"]) == (3, 2, 2)      # the vetoed match is never found
    assert by[0 + 8.0]["probability"] == pytest.approx(256 / 257)


def test_curve_anchored_at_the_threshold_splits_exactly_there(spark):
    cut = weight_of(0.99)                       # 6.6294 bits
    pairs = _pairs(spark, [(cut, True), (cut - 0.01, True), (cut + 0.2, False), (20.0, True)])
    curve = threshold_curve(pairs, anchor=cut)
    row = at_threshold(curve, 0.99)
    assert row["weight"] == pytest.approx(cut)
    # accepted at 0.99: the pair exactly at the cut, the one just above it, the one at 20 bits
    assert (row["tp"], row["fp"], row["fn"]) == (2, 1, 1)
    none = at_threshold(curve, 1 - 1e-9)                  # no pair reaches 30 bits
    assert (none["tp"], none["fp"], none["fn"], none["recall"]) == (0, 0, 3, 0.0)
    # no pair between 0.9 (3.17 bits) and the next bucket: the counts of that bucket, labelled 0.9
    loose = at_threshold(curve, 0.9)
    assert loose["probability"] == 0.9 and (loose["tp"], loose["fp"], loose["fn"]) == (3, 1, 0)


def test_empty_pairs_give_an_empty_curve(spark):
    assert threshold_curve(_pairs(spark, [])) == []


def _file(spark, header, rows):
    return spark.createDataFrame(rows, ", ".join(f"`{h}` string" for h in header))


def test_labels_from_either_layout_are_ordered_and_the_last_verdict_wins(spark):
    raw = _file(spark, ["L_Record", "r_record", "Match"],
                [("crm:2", "web:1", "yes"), ("crm:3", "crm:4", "non-match"), ("web:1", "crm:2", "0")])
    got = {(r.l_record, r.r_record): r.match for r in labels_from_file(raw, "ana").collect()}
    assert got == {("crm:2", "web:1"): False, ("crm:3", "crm:4"): False}
    raw = _file(spark, ["l_source", "l_member_id", "r_source", "r_member_id", "match"],
                [("web", " 9 ", "crm", "1", "TRUE")])
    rows = labels_from_file(raw, None).collect()
    assert [(r.l_record, r.r_record, r.match, r.labelled_by) for r in rows] == [("crm:1", "web:9", True, None)]
    assert rows[0].labelled_at is not None


@pytest.mark.parametrize("rows, named", [
    ([("crm:1", "crm:2", "maybe")], "match='maybe'"),
    ([("crm:1", "", "yes")], "(crm:1, None"),
    ([("crm:1", "crm:1", "yes")], "(crm:1, crm:1"),
])
def test_a_row_without_a_pair_or_verdict_fails_the_load_with_its_values(spark, rows, named):
    raw = _file(spark, ["l_record", "r_record", "match"], [("crm:5", "crm:6", "no"), *rows])
    with pytest.raises(InputError, match="1 row") as err:
        labels_from_file(raw, None)
    assert named in str(err.value)


def test_a_file_without_the_columns_names_them(spark):
    with pytest.raises(InputError, match="needs a header with match"):
        labels_from_file(_file(spark, ["a", "b"], [("1", "2")]), None)


def test_labelled_curve_counts_labelled_matches_that_were_never_candidates(spark):
    scored = spark.createDataFrame([("a", "b", 9.0), ("a", "c", 1.0), ("d", "e", 7.0)],
                                   "l_record string, r_record string, match_weight double")
    labels = spark.createDataFrame([("a", "b", True), ("a", "c", False), ("x", "y", True)],
                                   "l_record string, r_record string, match boolean")
    out = labelled_thresholds(scored, labels, 0.99)
    assert (out["labelled_pairs"], out["labelled_matches"], out["labelled_not_accepted_at_any_threshold"]) == (3, 2, 1)
    row = out["at_threshold"]
    assert (row["tp"], row["fp"], row["fn"]) == (1, 0, 1)      # (x, y) is a missed match; (d, e) is unlabelled
    assert out["best_f1"]["tp"] == 1 and out["curve"][-1]["fp"] == 1


def test_a_vetoed_pair_is_accepted_at_no_threshold(spark):
    from pyspark.sql import functions as F

    pairs = spark.createDataFrame([("b", "a", 12.0, True), ("c", "d", 9.0, False)],
                                  "l_record string, r_record string, match_weight double, vetoed boolean")
    got = {(r.l_record, r.r_record): r.match_weight for r in reviewable(pairs).collect()}
    assert got == {("a", "b"): None, ("c", "d"): 9.0}          # records in order, the vetoed weight null
    # a table saved before the verdict was: the configured rules decide
    old = pairs.drop("vetoed")
    assert {r.match_weight for r in reviewable(old, F.col("match_weight") > 10).collect()} == {None, 9.0}
    assert {r.match_weight for r in reviewable(old).collect()} == {12.0, 9.0}
