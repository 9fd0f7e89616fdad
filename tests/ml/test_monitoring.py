"""Model monitoring by hand: PSI of shifted and unshifted populations, realised AUC of matured scores."""
from __future__ import annotations

import math
from datetime import date

import pytest

from memberlake.ml.monitoring import psi, realized_auc, stability


def test_psi_by_hand():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    want = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(want)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) > 0.5         # an empty reference bin stays finite


def test_stability_sees_planted_drift_and_not_noise(spark):
    ref = spark.createDataFrame([(float(i % 100), float(i % 7)) for i in range(2000)], "x double, y double")
    same = spark.createDataFrame([(float((i * 37) % 100), float(i % 7)) for i in range(1000)], "x double, y double")
    shifted = spark.createDataFrame([(float(i % 100) + 40, None) for i in range(1000)], "x double, y double")
    assert all(v < 0.02 for v in stability(ref, same, ["x", "y"]).values())
    drift = stability(ref, shifted, ["x", "y"])
    assert drift["x"] > 1.0 and drift["y"] > 5.0                 # shifted values; all nulls now


def test_realized_auc_of_matured_dates_only(spark):
    # Scored 2024-01-01 (horizon 30 days, matured by 2024-03-01): p1, p2 bought again, p3, p4 did not.
    scores = spark.createDataFrame(
        [("p1", date(2024, 1, 1), 0.1), ("p2", date(2024, 1, 1), 0.6), ("p3", date(2024, 1, 1), 0.5),
         ("p4", date(2024, 1, 1), 0.9), ("p1", date(2024, 2, 20), 0.2), ("p3", date(2024, 2, 20), 0.8)],
        "person_id string, as_of_date date, probability double")
    purchases = spark.createDataFrame([("p1", date(2024, 1, 10)), ("p2", date(2024, 1, 31)), ("p3", date(2024, 2, 5)),
                                       ("p2", None)], "person_id string, order_date date")
    got = realized_auc(scores, purchases, 30, date(2024, 3, 1))
    # churned p3 (0.5), p4 (0.9) vs stayed p1 (0.1), p2 (0.6): 3 of 4 pairs ranked right
    assert got == [(date(2024, 1, 1), pytest.approx(0.75))]        # 2024-02-20 has not matured
